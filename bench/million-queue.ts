import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { controlSocketPath } from '../core/control/control-protocol.js';
import { sendControlRequest } from '../core/control/control-client.js';
import { seedDeferredMessages } from '../test/harness/spool-seed.js';
import { freePort } from './free-port.js';
import { ServerProcess } from './systems/server-process.js';
import { mxPortInLog, NODE, writeShippedConfig } from './systems/systems.js';

const run = promisify(execFile);

/** What `npm run bench -- --million [count]` measured: the big queue, and the same server with an empty one. */
export interface MillionQueueResult {
  readonly full: QueueFigures;
  readonly empty: QueueFigures;
}

export interface QueueFigures {
  readonly queue: string;
  readonly messages: number;
  readonly seedSeconds: number;
  /** From spawning the server to its first answer on the control socket (after the queue's recovery). */
  readonly startSeconds: number;
  readonly rssMiB: number;
  readonly peakRssMiB: number;
  /** GET /metrics, ms: median and slowest of the runs. */
  readonly metricsMs: { readonly median: number; readonly max: number };
  /** The stats request over the control socket (the server's side of `petrel queue stats`), ms. */
  readonly statsMs: { readonly median: number; readonly max: number };
  /** `petrel queue list --limit 100` over the control socket, ms. */
  readonly listPageMs: { readonly median: number; readonly max: number };
  /** The whole `petrel queue stats` / `queue list --limit 100` commands, process start included, ms. */
  readonly cliStatsMs: number;
  readonly cliListMs: number;
}

const RUNS = 7;

/**
 * A queue of `count` deferred 1 KiB messages (due a day later), written
 * straight into queue-spool's directory (test/harness/spool-seed.ts), then
 * the shipped profile started on it: the time it takes to start and recover
 * them, its memory, and the time of what operators and Prometheus ask while
 * they are queued. Delivery is on, as in production; nothing is due.
 */
export async function millionQueue(count: number): Promise<MillionQueueResult> {
  const empty = await measure(0);
  return { full: await measure(count), empty };
}

async function measure(count: number): Promise<QueueFigures> {
  const workDir = mkdtempSync(join(tmpdir(), 'petrel-million-'));
  const adminPort = await freePort();
  const name = 'petrel-million';
  const file = writeShippedConfig(process.cwd(), workDir, name, (config) => {
    config.admin = { ...config.admin, port: adminPort };
  });
  const dataDir = join(workDir, `${name}-data`);
  let server: ServerProcess | undefined;
  try {
    const seeding = Date.now();
    seedDeferredMessages(join(dataDir, 'queue'), count);
    const seedSeconds = (Date.now() - seeding) / 1000;
    const starting = Date.now();
    server = await new ServerProcess(name, NODE, [join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js'), 'start', '-c', file], mxPortInLog).ready(30 * 60_000);
    const socket = controlSocketPath(dataDir);
    // The ports are bound first (connections wait behind a gate); the control socket opens
    // once the plugins, the queue's recovery among them, have started: the server is up then.
    let stats: { states: { deferred: number } } | undefined;
    while (stats === undefined) {
      const ended = server.ended;
      if (ended) throw new Error(`the server ended after it started:\n${ended.output}`);
      stats = (await sendControlRequest(socket, { op: 'stats' })) as typeof stats;
      if (stats === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const startSeconds = (Date.now() - starting) / 1000;
    if (stats.states.deferred !== count) throw new Error(`the server counts ${stats.states.deferred} deferred messages, not ${count}`);
    const metricsMs = await timed(async () => {
      const response = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
      const body = await response.text();
      if (!body.includes(`petrel_queue_messages{state="deferred"} ${count}`)) throw new Error('/metrics does not show the queue');
    });
    const statsMs = await timed(() => sendControlRequest(socket, { op: 'stats' }));
    const listPageMs = await timed(async () => {
      const page = (await sendControlRequest(socket, { op: 'list', filter: { limit: 100 } })) as unknown[];
      if (page.length !== Math.min(100, count)) throw new Error(`a page of ${page.length} messages, not 100`);
    });
    const cli = (...args: string[]) => async () => void (await run(NODE, [join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js'), ...args, '-c', file]));
    const cliStatsMs = (await timed(cli('queue', 'stats'), 1)).max;
    const cliListMs = (await timed(cli('queue', 'list', '--limit', '100'), 1)).max;
    const { rss, peakRss } = server.memory();
    return { queue: 'queue-spool', messages: count, seedSeconds, startSeconds, rssMiB: rss / 2 ** 20, peakRssMiB: peakRss / 2 ** 20, metricsMs, statsMs, listPageMs, cliStatsMs, cliListMs };
  } finally {
    await server?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function timed(action: () => Promise<unknown>, runs = RUNS): Promise<{ median: number; max: number }> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    await action();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { median: round(times[Math.floor(times.length / 2)]), max: round(times[times.length - 1]) };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The result as the lines docs/performance.md quotes. */
export function formatMillionQueue({ full, empty }: MillionQueueResult): string {
  const slope = ((full.rssMiB - empty.rssMiB) * 2 ** 20) / Math.max(1, full.messages);
  const ms = (figures: { median: number; max: number }) => `median ${figures.median} ms, max ${figures.max} ms`;
  return [
    `${full.queue}: ${full.messages.toLocaleString('en')} deferred 1 KiB messages, due in a day (empty queue in brackets)`,
    `  seeded in ${full.seedSeconds.toFixed(1)} s (files written directly, no fsync)`,
    `  start and recover: ${full.startSeconds.toFixed(1)} s [${empty.startSeconds.toFixed(1)} s], ${(((full.startSeconds - empty.startSeconds) * 1e6) / Math.max(1, full.messages)).toFixed(0)} µs/message`,
    `  RSS after start: ${full.rssMiB.toFixed(0)} MiB [${empty.rssMiB.toFixed(0)} MiB], ${slope.toFixed(0)} B/message; peak ${full.peakRssMiB.toFixed(0)} MiB`,
    `  GET /metrics: ${ms(full.metricsMs)} [${ms(empty.metricsMs)}]`,
    `  queue stats (control socket): ${ms(full.statsMs)} [${ms(empty.statsMs)}]; the whole CLI command ${full.cliStatsMs.toFixed(0)} ms [${empty.cliStatsMs.toFixed(0)} ms]`,
    `  queue list --limit 100 (control socket): ${ms(full.listPageMs)} [${ms(empty.listPageMs)}]; the whole CLI command ${full.cliListMs.toFixed(0)} ms [${empty.cliListMs.toFixed(0)} ms]`,
  ].join('\n');
}
