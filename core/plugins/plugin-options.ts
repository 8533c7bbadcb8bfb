import type { ConfigIssue } from '../config/config-error.js';
import type { PluginEntryConfig } from '../config/schema.js';
import { issueAt, type ConfigLocator } from '../config/yaml-source.js';
import { toConfigIssues } from '../config/zod-issues.js';
import type { PluginClass } from './contract.js';

/**
 * A config entry's `options:` parsed by its plugin's schema (defaults
 * filled in), or the issues that say what is wrong, each at its line.
 */
export function parsePluginOptions(
  pluginClass: PluginClass,
  entry: PluginEntryConfig,
  index: number,
  locator: ConfigLocator,
): { readonly options: unknown; readonly issues: readonly ConfigIssue[] } {
  const name = pluginClass.meta.name;
  const at = ['plugins', index, 'options'] as const;
  if (pluginClass.options === undefined) {
    const issues = Object.keys(entry.options).length > 0 ? [issueAt(locator, at, `plugin ${name} takes no options`)] : [];
    return { options: {}, issues };
  }
  if (typeof (pluginClass.options as { safeParse?: unknown }).safeParse !== 'function') {
    const issue = issueAt(locator, ['plugins', index], `plugin ${name}: its static \`options\` is not a zod schema (write static readonly options = z.strictObject({ ... }))`);
    return { options: undefined, issues: [issue] };
  }
  const parsed = pluginClass.options.safeParse(entry.options, { reportInput: true });
  if (parsed.success) return { options: parsed.data, issues: [] };
  return { options: undefined, issues: toConfigIssues(parsed.error, locator, at, `plugin ${name}: `, pluginClass.options) };
}
