/**
 * `node dist/bench/bookkeeping.js`: what the main thread's bookkeeping costs
 * per call, each piece alone, in a tight loop (CPU time, so the figures are
 * upper bounds of what it adds to a message; docs/performance.md multiplies
 * them by the calls a message makes in the shipped profile):
 *
 * - a pino child logger, as made per session (`{ sid }`) and per
 *   transaction (`{ qid }`), and one log line through it;
 * - one observation of the hook-duration histogram (labels hook, plugin),
 *   with the two performance.now() calls that time it;
 * - a handler call as the hook runner makes it: an AbortController each,
 *   and for a handler that returns a promise the timeout timer (withTimeout)
 *   against awaiting the promise alone.
 */
import { createWriteStream } from 'node:fs';
import { pino } from 'pino';
import { withTimeout } from '../core/hooks/runner.js';
import { Metrics } from '../core/metrics/metrics.js';

const ITERATIONS = 200_000;

/** Where each step's result goes, so the compiler cannot drop the work as unused. */
const kept: unknown[] = new Array(1024);

/** CPU nanoseconds per iteration of `step` (after a warm-up of a tenth). */
async function perCall(step: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < ITERATIONS / 10; i++) kept[i & 1023] = await step(i);
  const started = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) kept[i & 1023] = await step(i);
  const used = process.cpuUsage(started);
  return ((used.user + used.system) * 1000) / ITERATIONS;
}

async function main(): Promise<void> {
  const sink = createWriteStream('/dev/null');
  const root = pino({ level: 'info', timestamp: pino.stdTimeFunctions.isoTime, base: { pid: process.pid } }, sink);
  const metrics = new Metrics({ defaultMetrics: false });
  const hooks = ['connect', 'helo', 'mail', 'rcpt', 'data', 'data_post'];
  const plugins = ['helo-check', 'dnsbl', 'recipients', 'mailauth', 'relay-access', 'routing'];
  const results: [string, number][] = [];
  const measure = async (name: string, step: (i: number) => unknown) => results.push([name, await perCall(step)]);

  await measure('empty loop (await of a plain value)', () => undefined);
  await measure('child logger { sid } (per session)', (i) => root.child({ sid: `s${i}` }));
  const sessionLog = root.child({ sid: 'session' });
  await measure('child of a child { qid } (per transaction)', (i) => sessionLog.child({ qid: `q${i}` }));
  const session = root.child({ sid: 'session' }).child({ qid: 'transaction' });
  await measure('info line through a child of a child', (i) => session.info({ rcpt: `r${i}@example.org` }, 'accepted'));
  await measure('info line through the root logger', (i) => root.info({ rcpt: `r${i}@example.org` }, 'accepted'));
  await measure('debug line (level info: not written)', () => session.debug({ rcpt: 'x' }, 'not written'));
  await measure('histogram observation, 2 labels', (i) => metrics.hookDuration.observe({ hook: hooks[i % 6], plugin: plugins[i % 6] }, 0.0001));
  const bound = hooks.map((hook, i) => metrics.hookDuration.labels({ hook, plugin: plugins[i] }));
  await measure('histogram observation, labelled child kept per handler', (i) => bound[i % 6].observe(0.0001));
  await measure('two performance.now() (timing a handler)', () => performance.now() - performance.now());
  await measure('AbortController per handler call', () => new AbortController());
  const resolved = Promise.resolve(1);
  await measure('async handler, awaited alone', () => resolved);
  await measure('async handler through withTimeout (timer set and cleared)', () => withTimeout(resolved, 5_000));

  const base = results[0][1];
  for (const [name, ns] of results) process.stdout.write(`${name.padEnd(62)} ${ns.toFixed(0).padStart(6)} ns${name.startsWith('empty') ? '' : `  (${(ns - base).toFixed(0)} ns over the loop)`}\n`);
  sink.end();
}

main().catch((error: unknown) => {
  process.stderr.write(`bookkeeping bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
