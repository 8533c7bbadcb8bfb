import type { SystemSpec } from './systems/systems.js';

export interface Scenario {
  readonly id: string;
  readonly size: number;
  readonly concurrency: number;
  readonly recipients: number;
  readonly messages: number;
}

export interface RunRecord {
  readonly system: string;
  readonly scenario: string;
  readonly messagesPerSecond: number;
  readonly cpuPerThousand: number;
  readonly peakRss: number;
  /** Relaying systems: seconds from the last 250 until the sink had every message. */
  readonly drainSeconds?: number;
}

export interface SummaryRow {
  readonly scenario: string;
  readonly system: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Median throughput over the baseline's median in the same scenario. */
  readonly ratio: number;
  readonly cpuPerThousand: number;
  readonly peakRss: number;
  /** Peak RSS over the baseline's peak in the same scenario. */
  readonly rssRatio: number;
  /** Relaying systems: the longest wait after the last 250 until the sink had everything. */
  readonly drainSeconds?: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function summarize(records: readonly RunRecord[], systems: readonly string[], baseline: string): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const scenarioIds = [...new Set(records.map((r) => r.scenario))];
  for (const scenario of scenarioIds) {
    const of = (system: string) => records.filter((r) => r.scenario === scenario && r.system === system);
    const base = of(baseline);
    const baseMedian = median(base.map((r) => r.messagesPerSecond));
    const basePeak = Math.max(...base.map((r) => r.peakRss));
    for (const system of systems) {
      const runs = of(system);
      if (runs.length === 0) continue;
      const rates = runs.map((r) => r.messagesPerSecond);
      const peakRss = Math.max(...runs.map((r) => r.peakRss));
      rows.push({
        scenario,
        system,
        median: median(rates),
        min: Math.min(...rates),
        max: Math.max(...rates),
        ratio: median(rates) / baseMedian,
        cpuPerThousand: median(runs.map((r) => r.cpuPerThousand)),
        peakRss,
        rssRatio: peakRss / basePeak,
        drainSeconds: runs.some((r) => r.drainSeconds !== undefined) ? Math.max(...runs.map((r) => r.drainSeconds ?? 0)) : undefined,
      });
    }
  }
  return rows;
}

export function formatReport(rows: readonly SummaryRow[], systems: readonly SystemSpec[]): string {
  const header = ['scenario', 'system', 'msg/s median', 'min', 'max', 'vs bare', 'cpu s/1000', 'peak RSS', 'RSS vs bare', 'sink has all'];
  const body = rows.map((row) => [
    row.scenario,
    row.system,
    row.median.toFixed(0),
    row.min.toFixed(0),
    row.max.toFixed(0),
    `${row.ratio.toFixed(2)}×`,
    row.cpuPerThousand.toFixed(2),
    `${(row.peakRss / 2 ** 20).toFixed(0)} MiB`,
    `${row.rssRatio.toFixed(2)}×`,
    row.drainSeconds === undefined ? '' : `+${row.drainSeconds.toFixed(2)} s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const legend = systems.map((s) => `  ${s.name.padEnd(14)} ${s.description}`).join('\n');
  return [legend, '', line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/**
 * `--compare`: the after/before ratio of one system to the same system built
 * from another revision, per scenario (throughput, and CPU per message where
 * lower is better, so it is before/after).
 */
export function formatComparison(rows: readonly SummaryRow[], after: string, before: string): string {
  const lines = [`${after} vs ${before} (same run, alternated):`];
  for (const scenario of new Set(rows.map((r) => r.scenario))) {
    const a = rows.find((r) => r.scenario === scenario && r.system === after);
    const b = rows.find((r) => r.scenario === scenario && r.system === before);
    if (!a || !b) continue;
    lines.push(
      `  ${scenario.padEnd(13)} throughput ${(a.median / b.median).toFixed(2)}× (${a.median.toFixed(0)} vs ${b.median.toFixed(0)} msg/s), ` +
        `CPU per message ${(b.cpuPerThousand / a.cpuPerThousand).toFixed(2)}× less (${a.cpuPerThousand.toFixed(2)} vs ${b.cpuPerThousand.toFixed(2)} s/1000)`,
    );
  }
  return lines.join('\n');
}
