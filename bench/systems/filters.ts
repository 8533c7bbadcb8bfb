import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { TestClamd } from '../../test/fixtures/clamd.js';
import { RspamdDaemon } from '../../test/harness/rspamd-daemon.js';
import type { RunningSystem } from './server-process.js';
import { acceptOnly, petrelShipped, type SystemSpec } from './systems.js';

/** A content scanner's daemon, running for as long as the system that uses it. */
interface Daemon {
  stop(): Promise<void>;
}

/**
 * A Petrel system with a content scanner on, measured against `baseline`
 * (the same profile without it) in the same run: the ratio is what the
 * scanner costs. A new scanner is one more entry in FILTER_SYSTEMS.
 */
export interface FilterSystem {
  readonly spec: SystemSpec;
  readonly baseline: string;
  /** The daemon's program; the system is left out (with a note) when it is not installed. */
  readonly program: string;
}

/**
 * The shipped profile (petrel-journal's) plus one scanner plugin, its daemon
 * started before Petrel and stopped after it. The plugin goes just before the
 * queue plugin, so it scans every message the profile would accept.
 */
function withScanner<D extends Daemon>(name: string, description: string, startDaemon: () => Promise<D>, plugin: (daemon: D) => Record<string, unknown>): SystemSpec {
  return {
    name,
    description,
    start: async (workDir, sinkPort) => {
      const daemon = await startDaemon();
      const petrel = petrelShipped(name, description, (config) => {
        acceptOnly(config);
        const at = config.plugins.findIndex((entry: { name?: string }) => entry.name?.startsWith('queue-'));
        if (at < 0) throw new Error('the shipped config names no queue plugin');
        config.plugins.splice(at, 0, plugin(daemon));
      });
      let running: RunningSystem;
      try {
        running = await petrel.start(workDir, sinkPort);
      } catch (error) {
        await daemon.stop();
        throw error;
      }
      return {
        name: running.name,
        port: running.port,
        cpu: () => running.cpu(),
        memory: () => running.memory(),
        resetPeak: () => running.resetPeak(),
        stop: async () => {
          await running.stop();
          await daemon.stop();
        },
      };
    },
  };
}

export const FILTER_SYSTEMS: readonly FilterSystem[] = [
  {
    spec: withScanner(
      'petrel-rspamd',
      "the shipped profile with the rspamd plugin on (a local rspamd, Debian's rules, one worker per CPU, hyperscan off, DNS answered NXDOMAIN at once)",
      () => RspamdDaemon.start({}, cpus().length),
      (daemon) => ({ name: 'rspamd', options: { url: daemon.url } }),
    ),
    baseline: 'petrel-journal',
    program: 'rspamd',
  },
  {
    spec: withScanner(
      'petrel-clamav',
      'the shipped profile with the clamav plugin on (a local clamd over its unix socket, with two test signatures: the cost of INSTREAM and parsing, not of a full signature set)',
      () => TestClamd.start(),
      (daemon) => ({ name: 'clamav', options: { socket: daemon.socket } }),
    ),
    baseline: 'petrel-journal',
    program: 'clamd',
  },
];

export function installed(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}
