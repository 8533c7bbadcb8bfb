import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { RspamdDaemon } from '../../test/harness/rspamd-daemon.js';
import type { RunningSystem } from './server-process.js';
import { acceptOnly, petrelShipped, type SystemSpec } from './systems.js';

/** A content scanner's daemon, running for as long as the system that uses it. */
interface Daemon {
  readonly url: string;
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
 * petrel-spool's profile plus one scanner plugin, its daemon started before
 * Petrel and stopped after it. The plugin goes just before queue-spool, so it
 * scans every message the profile would accept.
 */
function withScanner(name: string, description: string, startDaemon: () => Promise<Daemon>, plugin: (daemon: Daemon) => Record<string, unknown>): SystemSpec {
  return {
    name,
    description,
    start: async (workDir, sinkPort) => {
      const daemon = await startDaemon();
      const petrel = petrelShipped(name, description, (config) => {
        acceptOnly(config);
        const at = config.plugins.findIndex((entry: { name?: string }) => entry.name === 'queue-spool');
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
      "petrel-spool's profile with the rspamd plugin on (a local rspamd, Debian's rules, one worker per CPU, hyperscan off, DNS answered NXDOMAIN at once)",
      () => RspamdDaemon.start({}, cpus().length),
      (daemon) => ({ name: 'rspamd', options: { url: daemon.url } }),
    ),
    baseline: 'petrel-spool',
    program: 'rspamd',
  },
];

export function installed(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}
