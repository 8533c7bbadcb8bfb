import type { ConfigIssue } from '../config/config-error.js';
import type { LoadedConfig } from '../config/load.js';
import type { PluginEntryConfig } from '../config/schema.js';
import { durationText } from '../config/units.js';
import { issueAt } from '../config/yaml-source.js';
import type { RegisteredHandler } from '../hooks/registry.js';

/** A plugin entry of the config, by its position (for key paths). */
export interface PluginEntryAt {
  readonly name: string;
  readonly index: number;
  readonly entry: PluginEntryConfig;
}

/**
 * A delivery must fit in its lease. The scheduler lets a leased message wait
 * for its destination (outbound shaping) at most `delivery.shaping.maxWait`,
 * and starts a delivery only while the lease left covers the `deliver` hook's
 * timeout. With a `delivery.leaseTime` shorter than those two together, a
 * message that has to wait at all is given back and leased again later, over
 * and over (delivery measured about four times slower), and a delivery that
 * runs to its timeout outlives its lease, so another node may send it too.
 * Such a config is refused, at `delivery.leaseTime`, naming the delivery
 * plugin with the longest timeout and where that timeout comes from.
 */
export function leaseBudgetIssues(loaded: LoadedConfig, deliverers: readonly RegisteredHandler<'deliver'>[], entries: readonly PluginEntryAt[]): ConfigIssue[] {
  const { delivery, hooks } = loaded.config;
  const longest = [...deliverers].sort((a, b) => b.timeoutMs - a.timeoutMs)[0];
  if (!longest) return [];
  const needed = longest.timeoutMs + delivery.shaping.maxWait;
  if (delivery.leaseTime >= needed) return [];
  const at = entries.find((e) => e.name === longest.plugin);
  const source =
    at?.entry.timeouts?.deliver !== undefined
      ? `plugins[${at.index}].timeouts.deliver`
      : at?.entry.timeout !== undefined
        ? `plugins[${at.index}].timeout`
        : hooks.timeouts.deliver !== undefined
          ? 'hooks.timeouts.deliver'
          : 'the default deliver timeout';
  const message =
    `${durationText(delivery.leaseTime)} is too short: a lease must cover the longest wait for a destination ` +
    `(delivery.shaping.maxWait, ${durationText(delivery.shaping.maxWait)}) plus the longest delivery ` +
    `(${longest.plugin}: ${durationText(longest.timeoutMs)}, ${source}); expected at least ${durationText(needed)} ` +
    `(or lower that timeout)`;
  return [issueAt(loaded.locator, ['delivery', 'leaseTime'], message)];
}
