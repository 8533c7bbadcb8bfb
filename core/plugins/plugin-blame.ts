import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A loaded plugin and where its code lives (see pluginSourceRoot). */
export interface PluginCode {
  readonly name: string;
  /** A folder (ending with a path separator) or one file. */
  readonly source: string;
}

/** The file of one V8 stack frame: `at f (file:///a/b.js:1:2)`, `at /a/b.js:1:2`, `at async f (file:///a/b.js:1:2)`. */
const FRAME = /^\s+at .*?\(?((?:file:\/\/)?\/[^()]*?):\d+:\d+\)?\s*$/;

/**
 * The plugin whose code the error's stack passes through first (the frame
 * nearest to where it was thrown), for log lines about errors nobody
 * caught. Undefined when no frame is in a plugin, or there is no stack
 * (a promise rejected with a string).
 */
export function pluginInStack(error: unknown, plugins: readonly PluginCode[]): string | undefined {
  const stack = (error as { stack?: unknown } | null | undefined)?.stack;
  if (typeof stack !== 'string') return undefined;
  for (const line of stack.split('\n')) {
    const location = FRAME.exec(line)?.[1];
    if (location === undefined) continue;
    const file = location.startsWith('file:') ? fileURLToPath(location) : location;
    const plugin = plugins.find((p) => (p.source.endsWith(sep) ? file.startsWith(p.source) : file === p.source));
    if (plugin) return plugin.name;
  }
  return undefined;
}
