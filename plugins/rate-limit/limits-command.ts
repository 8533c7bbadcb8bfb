import type { CommandContext, PluginCommand } from 'petrel';

/** One counter as `petrel limits` shows it. */
export interface LimitReport {
  readonly rule: string;
  /** What the rule counts (messages, concurrent, ...) and what per (sender, ip, ...). */
  readonly count: string;
  readonly key: string;
  /** The key value as the server counts it (lower-cased, aggregated to a network, ...). */
  readonly value: string;
  readonly used: number;
  readonly limit: number;
  /** `10 per 1 minute`, `5 at once`. */
  readonly limitText: string;
  /** Ms until the whole budget is free again; undefined for concurrency slots. */
  readonly resetAfterMs?: number;
}

/**
 * What the rate-limit plugin offers this command. Counters are read where
 * the server keeps them, so this works with `store: redis`; the plugin
 * refuses (with a message saying why) for the memory store, whose counters
 * live inside the running server.
 */
export interface RateLimitAdmin {
  /** Every counter the value could be the key of, optionally of one rule. */
  showLimits(value: string, rule?: string): Promise<LimitReport[]>;
  /** Forgets those counters; resolves to the ones that existed. */
  resetLimits(value: string, rule?: string): Promise<LimitReport[]>;
}

/** `petrel limits show|reset VALUE [RULE]`: looks at or clears the rate-limit plugin's counters. */
export const limitsCommand: PluginCommand = {
  name: 'limits',
  usage: 'show|reset VALUE [RULE] [--json]   (VALUE: an IP address, network, address, domain, user or HELO name)',
  description: 'show the rate-limit counters VALUE is a key of, or reset them (lift a limit now)',
  options: { json: { type: 'boolean' } },
  run: showOrReset,
};

async function showOrReset(context: CommandContext): Promise<number> {
  const [action, value, rule] = context.args;
  if (action === undefined) return context.usage('which limits command?');
  if (action !== 'show' && action !== 'reset') return context.usage(`unknown limits command "${action}"`);
  if (value === undefined) return context.usage(`limits ${action}: the VALUE is missing`);
  const reports = await context.withPlugin((admin: RateLimitAdmin) =>
    (action === 'show' ? admin.showLimits(value, rule) : admin.resetLimits(value, rule)).catch((error: Error) => error),
  );
  if (reports === undefined) {
    context.out(`${context.configFile}: the rate-limit plugin is not enabled`);
    return 1;
  }
  if (reports instanceof Error) {
    context.err(reports.message);
    return 1;
  }
  if (context.flags.json === true) context.out(JSON.stringify(reports, null, 2));
  else if (action === 'show') printReports(reports, value, context.out);
  else if (reports.length === 0) context.out(`nothing to reset for ${value}`);
  else for (const report of reports) context.out(`reset ${report.rule} (${report.key} ${report.value}, was ${report.used} of ${report.limitText})`);
  return 0;
}

function printReports(reports: readonly LimitReport[], value: string, out: (line: string) => void): void {
  if (reports.length === 0) {
    out(`no rule counts per ${value}`);
    return;
  }
  const rows = reports.map((r) => [r.rule, r.count, `${r.key} ${r.value}`, String(r.used), r.limitText, resetText(r)]);
  const header = ['RULE', 'COUNTS', 'KEY', 'USED', 'LIMIT', 'FREE AGAIN IN'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  for (const row of [header, ...rows]) out(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
}

/** `now`, `45s`, `12m30s`, `3h20m`; `-` for concurrency slots, which free up as connections close. */
function resetText(report: LimitReport): string {
  if (report.resetAfterMs === undefined) return '-';
  const seconds = Math.ceil(report.resetAfterMs / 1000);
  if (seconds === 0) return 'now';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
