/**
 * `npm run bench`: throughput and memory of Petrel side by side with a bare
 * smtp-server, measured in one run on loopback, systems alternating
 * (A B A B …) so machine noise falls on all of them alike.
 *
 *   npm run bench                     full matrix, 3 rounds
 *   npm run bench -- --quick          1 KiB and 100 KiB at 20 clients, 1 recipient
 *   npm run bench -- --json           machine-readable result on stdout
 *   npm run bench -- --peers          also Postfix (Debian package) and Haraka (npm, installed
 *                                     once under the temp dir), forwarding and discarding
 *   npm run bench -- --rounds 5 --generator node --only 1k-c20-r1
 *   npm run bench -- --compare HEAD~1 --systems petrel-spool,petrel-relay --only 1k-c20-r1 --rounds 7
 *                                     the selected Petrel systems of this tree against the
 *                                     same systems built from an earlier revision, in one run
 *   npm run bench -- --compare FIX~1..FIX --systems petrel-spool --only 1k-c20-r1 --rounds 7
 *                                     one commit's before/after ratio (this tree's left out)
 *   npm run bench -- --systems petrel-rspamd --only 1k-c20-r1,100k-c20-r1
 *                                     a content scanner's cost: petrel-spool's profile with it on, as
 *                                     a ratio to the same profile without it (in every run where its
 *                                     daemon is installed; bench/systems/filters.ts)
 *   npm run bench -- --million [count]
 *                                     only the big-queue scenario: count (default 1,000,000)
 *                                     deferred 1 KiB messages in queue-spool; start-up, memory,
 *                                     /metrics, queue stats and list latency (million-queue.ts)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runNodeLoad } from './load/node-load.js';
import type { LoadOptions, LoadResult } from './load/load-options.js';
import { runSmtpSource, smtpSourceAvailable } from './load/smtp-source.js';
import { checkLargeMessageMemory } from './large-message.js';
import { formatMillionQueue, millionQueue } from './million-queue.js';
import { formatComparison, formatReport, summarize, type RunRecord, type Scenario } from './report.js';
import type { RunningSystem } from './systems/server-process.js';
import { postfixAvailable, postfixPeer } from './systems/postfix.js';
import { harakaDiscard, harakaForward } from './systems/haraka.js';
import { installedHaraka } from './systems/haraka-install.js';
import { bareSmtpServer, petrelJournal, petrelRedis, petrelRelay, petrelSpool, petrelWorkers2, REDIS_BENCH_PREFIX, type SystemSpec } from './systems/systems.js';
import { comparedPairs, prepareComparison } from './checkout.js';
import { FILTER_SYSTEMS, installed } from './systems/filters.js';
import { Sink } from './sink.js';
import { deleteKeys } from './redis-cleanup.js';

/** Messages of `--million` without a count. */
const MILLION = 1_000_000;

// `--million` may come without its count (parseArgs has no optional values).
const argv = process.argv.slice(2);
const millionAt = argv.indexOf('--million');
if (millionAt >= 0 && !/^\d+$/.test(argv[millionAt + 1] ?? '')) argv.splice(millionAt + 1, 0, String(MILLION));

const { values } = parseArgs({
  args: argv,
  options: {
    million: { type: 'string' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    generator: { type: 'string' },
    only: { type: 'string' },
    peers: { type: 'boolean', default: false },
    compare: { type: 'string' },
    systems: { type: 'string' },
  },
});

function scenarios(): Scenario[] {
  const all: Scenario[] = [];
  for (const size of [1024, 100 * 1024]) {
    for (const concurrency of [1, 20, 100]) {
      for (const recipients of [1, 10]) {
        const small = size <= 1024;
        // Sized so each run takes a few seconds and the whole default matrix stays under ten minutes.
        const messages = concurrency === 1 ? (small ? 200 : 100) : small ? 2000 : 600;
        all.push({ id: `${small ? '1k' : '100k'}-c${concurrency}-r${recipients}`, size, concurrency, recipients, messages });
      }
    }
  }
  if (values.only) return all.filter((s) => values.only?.split(',').includes(s.id));
  if (values.quick) return all.filter((s) => s.concurrency === 20 && s.recipients === 1);
  return all;
}

async function main(): Promise<void> {
  if (values.million !== undefined) {
    const result = await millionQueue(Number(values.million));
    process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatMillionQueue(result)}\n`);
    return;
  }
  const generatorName = values.generator ?? (smtpSourceAvailable() ? 'smtp-source' : 'node');
  const generate = generatorName === 'smtp-source' ? runSmtpSource : runNodeLoad;
  const rounds = Number(values.rounds);
  let systems: SystemSpec[] = [bareSmtpServer, petrelJournal, petrelSpool, petrelWorkers2, petrelRedis, petrelRelay];
  const wanted = values.systems?.split(',');
  // Content scanners: each beside its baseline profile, when its daemon is installed.
  for (const filter of FILTER_SYSTEMS) {
    if (installed(filter.program)) systems.push(filter.spec);
    else if (!wanted || wanted.includes(filter.spec.name)) process.stderr.write(`${filter.program} is not installed: ${filter.spec.name} left out\n`);
  }
  if (values.peers) {
    if (postfixAvailable()) systems.push(postfixPeer);
    else process.stderr.write('--peers: Postfix is not installed (apt-get install postfix, then stop its daemon) or we are not root; skipping it\n');
    try {
      // Installing from npm takes a while: not when --systems leaves Haraka out anyway.
      if (!wanted || wanted.some((name) => name.startsWith('haraka'))) {
        const haraka = installedHaraka();
        systems.push(harakaForward(haraka), harakaDiscard(haraka));
      }
    } catch (error) {
      process.stderr.write(`--peers: Haraka could not be installed from npm; skipping it\n${(error as Error).message}\n`);
    }
  }
  if (wanted) {
    const unknown = wanted.filter((name) => !systems.some((s) => s.name === name));
    if (unknown.length > 0) throw new Error(`--systems: no system named ${unknown.join(', ')} (there are ${systems.map((s) => s.name).join(', ')})`);
    // A scanner's figure is a ratio to its baseline profile: that one runs too.
    const baselines = FILTER_SYSTEMS.filter((f) => wanted.includes(f.spec.name)).map((f) => f.baseline);
    systems = systems.filter((s) => wanted.includes(s.name) || baselines.includes(s.name));
  }
  if (!systems.includes(bareSmtpServer)) systems.unshift(bareSmtpServer); // every ratio is against it
  const workDir = mkdtempSync(join(tmpdir(), 'petrel-bench-'));
  // Undone in reverse order whatever fails, each step on its own.
  const cleanups: (() => unknown)[] = [
    () => rmSync(workDir, { recursive: true, force: true }),
    () => deleteKeys(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', REDIS_BENCH_PREFIX),
  ];
  const running = new Map<string, RunningSystem>();
  let sink: Sink | undefined;
  try {
    const comparison = values.compare ? prepareComparison(values.compare, workDir, (remove) => cleanups.push(remove)) : undefined;
    // Every selected Petrel system runs as built from the compared revision(s) too.
    const compared = systems.filter((s): s is SystemSpec & Required<Pick<SystemSpec, 'at'>> => s.at !== undefined);
    if (comparison) {
      const checkouts = comparison.after ? [comparison.after, comparison.before] : [comparison.before];
      if (comparison.after) systems = systems.filter((s) => s.at === undefined);
      for (const checkout of checkouts) for (const system of compared) systems.push(system.at(checkout.root, checkout.revision));
    }
    const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
    log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
    log(`load generator: ${generatorName}; new connection per message; ${rounds} alternated rounds`);
    const records: RunRecord[] = [];
    sink = await Sink.start();
    for (const system of systems) running.set(system.name, await system.start(workDir, sink.port));
    for (const scenario of scenarios()) {
      log(`scenario ${scenario.id}: ${scenario.messages} messages of ${scenario.size} bytes, ${scenario.concurrency} clients, ${scenario.recipients} recipients`);
      for (const system of systems) await run(generate, running, system, sink, { ...scenario, messages: Math.min(200, scenario.messages) });
      for (let round = 0; round < rounds; round++) {
        // Every other round in reverse, so no system always runs right after the same one.
        for (const system of round % 2 === 0 ? systems : [...systems].reverse()) {
          const record = await run(generate, running, system, sink, scenario);
          records.push(record);
          const drain = record.drainSeconds === undefined ? '' : `  sink has all ${record.drainSeconds.toFixed(2)} s after the last 250`;
          log(`  ${system.name.padEnd(14)} ${record.messagesPerSecond.toFixed(0).padStart(6)} msg/s  cpu ${record.cpuPerThousand.toFixed(2)} s/1000  peak ${(record.peakRss / 2 ** 20).toFixed(0)} MiB${drain}`);
        }
      }
    }
    const journal = running.get('petrel-journal');
    if (!journal) log('50 MiB memory check skipped: it runs against petrel-journal (the default queue), which is not in this run');
    const memoryCheck = journal ? await checkLargeMessageMemory(journal) : undefined;
    const summary = summarize(records, systems.map((s) => s.name), 'bare');
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ generator: generatorName, rounds, systems: systems.map((s) => ({ name: s.name, description: s.description })), summary, memoryCheck, records }, null, 2)}\n`);
    } else {
      log('');
      log(formatReport(summary, systems));
      log('');
      for (const pair of comparison ? comparedPairs(comparison, compared.map((s) => s.name)) : []) log(`${formatComparison(summary, pair.after, pair.before)}\n`);
      for (const filter of FILTER_SYSTEMS) {
        if (systems.includes(filter.spec) && systems.some((s) => s.name === filter.baseline)) log(`${formatComparison(summary, filter.spec.name, filter.baseline)}\n`);
      }
      const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
      if (memoryCheck) {
        log(
          `50 MiB messages into petrel-journal: RSS grew ${mib(memoryCheck.growth)} MiB (the smaller of the second and third; the first message of the process: ${mib(memoryCheck.firstGrowth)} MiB; ` +
            `peak ${mib(memoryCheck.peakRss)} MiB), reply: ${memoryCheck.reply}`,
        );
      }
    }
  } finally {
    await Promise.all([...running.values()].map((server) => server.stop().catch(() => undefined)));
    await sink?.stop().catch(() => undefined);
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        process.stderr.write(`bench clean-up: ${(error as Error).message}\n`);
      }
    }
  }
}

/**
 * One measured run of `scenario` against `system`. For a relaying system the
 * clock stops when the sink has every message, not at the last 250, and the
 * gap between the two is recorded.
 */
async function run(
  generate: (o: LoadOptions) => Promise<LoadResult>,
  running: Map<string, RunningSystem>,
  system: SystemSpec,
  sink: Sink,
  scenario: Scenario,
): Promise<RunRecord> {
  const server = running.get(system.name) as RunningSystem;
  server.resetPeak();
  const cpuBefore = server.cpu();
  const sinkBefore = sink.count;
  const started = performance.now();
  const options = loadOptions(server.port, scenario, system.relays ? 'user@relay.test' : 'postmaster@localhost');
  const result = await generate(options);
  if (result.failed > 0) throw new Error(`${server.name}: ${result.failed} messages failed in ${scenario.id}`);
  const lastAck = performance.now();
  if (system.relays) await sink.waitFor(sinkBefore + scenario.messages, 300_000);
  const done = performance.now();
  const cpu = server.cpu() - cpuBefore;
  return {
    system: server.name,
    scenario: scenario.id,
    messagesPerSecond: scenario.messages / ((done - started) / 1000),
    cpuPerThousand: (cpu / scenario.messages) * 1000,
    peakRss: server.memory().peakRss,
    drainSeconds: system.relays ? (done - lastAck) / 1000 : undefined,
  };
}

function loadOptions(port: number, scenario: Scenario, to: string): LoadOptions {
  return {
    host: '127.0.0.1',
    port,
    concurrency: scenario.concurrency,
    messages: scenario.messages,
    size: scenario.size,
    recipients: scenario.recipients,
    reuse: false,
    from: 'loadgen@bench.test',
    to,
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
