import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ServerProcess, type RunningSystem } from './server-process.js';

export interface SystemSpec {
  /** Short label used in tables. */
  readonly name: string;
  readonly description: string;
  /** Relaying systems pass every message on to the sink; the others keep it. */
  readonly relays?: boolean;
  start(workDir: string, sinkPort: number): Promise<RunningSystem>;
  /** Petrel systems: the same system built from another checkout (`--compare`), named `<name>@<revision>`. */
  at?(root: string, revision: string): SystemSpec;
}

export const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

/** A bare smtp-server accepting and discarding: the ceiling, 1.00×. */
export const bareSmtpServer: SystemSpec = {
  name: 'bare',
  description: 'bare smtp-server, accept and discard (pre-greeting pause removed)',
  start: () =>
    new ServerProcess('bare', NODE, [join(process.cwd(), 'dist', 'bench', 'bare-server.js')], (line) => {
      const match = /^listening (\d+)/.exec(line);
      return match ? Number(match[1]) : undefined;
    }).ready(),
};

/**
 * Petrel with the shipped mta.config.yaml, changed only where a benchmark
 * must: its own data directory and free ports (several run side by side).
 * `root` is the checkout whose build and shipped config run (another one
 * for `--compare`).
 */
export function petrelShipped(
  name: string,
  description: string,
  change: (config: Record<string, any>, sinkPort: number, name: string) => void = () => undefined,
  relays = false,
  root = process.cwd(),
): SystemSpec {
  return {
    name,
    description,
    relays,
    at: (otherRoot, revision) => petrelShipped(`${name}@${revision}`, `${name} as of ${revision} (before/after comparison)`, change, relays, otherRoot),
    start: async (workDir, sinkPort) => {
      let workers = 1;
      const file = writeShippedConfig(root, workDir, name, (config) => {
        change(config, sinkPort, name);
        workers = config.server?.workers ?? 1;
      });
      const cli = join(root, 'dist', 'core', 'cli', 'petrel.js');
      // The mx port is logged when it is bound; the system is ready at `accepting connections`
      // (with server.workers, the primary's line once every worker serves).
      let mxPort: number | undefined;
      const portFrom = (line: string) => {
        if (!line.startsWith('{')) return undefined;
        try {
          const entry = JSON.parse(line) as { listener?: string; port?: number; msg?: string };
          if (entry.listener === 'mx' && typeof entry.port === 'number' && entry.msg?.startsWith('listening')) mxPort ??= entry.port;
          return entry.msg === 'accepting connections' ? mxPort : undefined;
        } catch {
          return undefined;
        }
      };
      // Starting several processes one after another takes longer on a busy machine.
      return new ServerProcess(name, NODE, [cli, 'start', '-c', file], portFrom, {}, undefined, workers !== 1).ready(workers === 1 ? 30_000 : 120_000);
    },
  };
}

/**
 * Writes the shipped mta.config.yaml of `root`, changed only where a
 * benchmark must (its own data directory `<workDir>/<name>-data`, free
 * ports) and then by `change`, to `<workDir>/<name>.yaml`; returns its path.
 */
export function writeShippedConfig(root: string, workDir: string, name: string, change: (config: Record<string, any>) => void): string {
  const config = parse(readFileSync(join(root, 'mta.config.yaml'), 'utf8')) as Record<string, any>;
  config.server.dataDir = join(workDir, `${name}-data`);
  // Benchmarks here run as root; Petrel refuses that unless told it is on purpose.
  if (process.getuid?.() === 0) config.server.user ??= 'root';
  for (const listener of config.listeners) listener.port = 0;
  if (config.admin) config.admin.port = 0;
  // smtp-source numbers its recipients (1postmaster@localhost, 2postmaster@...): let the
  // recipients plugin accept every local address, as a catch-all domain would.
  config.plugins = config.plugins.map((entry: { name?: string; options?: Record<string, unknown> }) =>
    entry.name === 'recipients' ? { ...entry, options: { ...entry.options, catchAll: true } } : entry,
  );
  change(config);
  const file = join(workDir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  return file;
}

/** The port of the `mx` listener, from Petrel's JSON log line that says it listens. */
export function mxPortInLog(line: string): number | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line) as { listener?: string; port?: number; msg?: string };
    return entry.listener === 'mx' && typeof entry.port === 'number' && entry.msg?.startsWith('listening') ? entry.port : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the accept benchmarks change in the shipped profile: the size limit is
 * raised so the 50 MiB memory check is accepted, and delivery is off so the
 * figures are for acceptance alone (relaying is its own scenario).
 */
export function acceptOnly(config: Record<string, any>): void {
  config.limits = { ...config.limits, messageSize: '64MiB' };
  config.delivery = { ...config.delivery, enabled: false };
}

/** The shipped profile with another queue plugin in place of the one it names. */
function withQueue(config: Record<string, any>, queue: string): void {
  config.plugins = config.plugins.map((entry: { name?: string }) => (entry.name?.startsWith('queue-') ? { name: queue } : entry));
}

export const petrelJournal = petrelShipped('petrel-journal', 'Petrel, shipped MX profile, accepting into queue-journal (group commit, fdatasync before 250)', (config) => {
  acceptOnly(config);
  withQueue(config, 'queue-journal');
});

export const petrelSpool = petrelShipped('petrel-spool', 'Petrel, shipped MX profile, accepting into queue-spool (a file per message, fsync before 250)', (config) => {
  acceptOnly(config);
  withQueue(config, 'queue-spool');
});

/** petrel-spool with two worker processes sharing the listener (server.workers: 2): CPU and memory are the whole tree's. */
export const petrelWorkers2 = petrelShipped('petrel-workers2', 'the shipped MX profile (queue-journal) with server.workers: 2 (a primary and two workers; CPU and RSS summed over all three)', (config) => {
  acceptOnly(config);
  config.server.workers = 2;
});

/** Where the Redis benchmark keeps its keys; removed when the run ends. */
export const REDIS_BENCH_PREFIX = `petrel-bench:${process.pid}:`;

/**
 * The same profile with queue-redis on the Redis at REDIS_URL (default
 * 127.0.0.1:6379), under a key prefix of its own (below REDIS_BENCH_PREFIX)
 * that is removed afterwards.
 */
export const petrelRedis = petrelShipped('petrel-redis', 'Petrel, shipped MX profile, accepting into queue-redis', (config, _sinkPort, name) => {
  acceptOnly(config);
  // A queue of its own per system: petrel-redis and its --compare twin must not share one.
  config.redis = { url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix: `${REDIS_BENCH_PREFIX}${name}:` };
  withQueue(config, 'queue-redis');
});

/**
 * The shipped profile relaying: loopback is a relay network, and every
 * non-local recipient goes through relay-smarthost to the sink (a stand-in
 * for the Internet). Accept → queue → deliver, all measured.
 */
export const petrelRelay = petrelShipped(
  'petrel-relay',
  'Petrel, shipped profile relaying every message to the sink (accept, queue-journal, deliver)',
  (config, sinkPort) => {
    config.plugins = config.plugins.flatMap((entry: { name?: string; options?: Record<string, unknown> }) => {
      if (entry.name === 'relay-access') return [{ ...entry, options: { ...entry.options, relayNetworks: ['127.0.0.0/8'] } }];
      if (entry.name === 'routing') return [{ ...entry, options: { ...entry.options, default: 'relay-smarthost' } }];
      if (entry.name === 'relay-mx') return [{ name: 'relay-smarthost', options: { host: '127.0.0.1', port: sinkPort, tls: 'none' } }];
      return [entry];
    });
  },
  true,
);
