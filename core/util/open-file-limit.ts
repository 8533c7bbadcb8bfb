import { readFileSync } from 'node:fs';
import { limitsOf } from '../config/limits-schema.js';
import type { PetrelConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';

/** Descriptors Node, the logger, the queue, Redis, the control and admin sockets and plugin files use besides connections. */
const BASE_DESCRIPTORS = 100;

export interface OpenFileLimit {
  readonly soft: number;
  readonly hard: number;
}

/**
 * This process's RLIMIT_NOFILE, from /proc/self/limits (Linux); undefined
 * elsewhere. Node has no getrlimit/setrlimit, but it raises the soft limit
 * to the hard one itself when it starts, so what is read here is already
 * the most this process can get without privileges.
 */
export function openFileLimit(limits = '/proc/self/limits'): OpenFileLimit | undefined {
  let text: string;
  try {
    text = readFileSync(limits, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!match) return undefined;
  const value = (field: string) => (field === 'unlimited' ? Number.POSITIVE_INFINITY : Number(field));
  return { soft: value(match[1]), hard: value(match[2]) };
}

/**
 * How many descriptors the configured limits can hold at once: per
 * connection its socket and the spool file of the message it sends, per
 * delivery its connection and the queued message, and a base for the rest.
 */
export function descriptorsNeeded(config: PetrelConfig): number {
  const deliveries = config.delivery.enabled ? config.delivery.concurrency.total : 0;
  return 2 * connectionsAllowed(config) + 2 * deliveries + BASE_DESCRIPTORS;
}

/** limits.clients of every listener (a listener may set its own). */
function connectionsAllowed(config: PetrelConfig): number {
  return config.listeners.reduce((sum, listener) => sum + limitsOf(config, listener.name).clients, 0);
}

/**
 * Warns at start when the open-file limit is below what the config can
 * need: past it, accept() fails with EMFILE and clients see refused
 * connections long before limits.clients is reached. The line has the
 * numbers and the settings that raise the limit.
 */
export function warnIfFewFileDescriptors(config: PetrelConfig, log: Logger, limit = openFileLimit()): void {
  if (!limit) return;
  const needed = descriptorsNeeded(config);
  if (limit.soft >= needed) return;
  const raise =
    limit.hard > limit.soft
      ? `raise the soft limit (ulimit -Sn ${Math.min(limit.hard, needed)})`
      : 'raise it where the server is started (systemd: LimitNOFILE=65536 in the unit; a shell: ulimit -n 65536, as root or within the hard limit)';
  log.warn(
    { code: 'PETREL_OPEN_FILE_LIMIT', soft: limit.soft, hard: limit.hard, needed, clients: connectionsAllowed(config), listeners: config.listeners.length },
    `the open-file limit is ${limit.soft} (hard ${limit.hard}), but ${connectionsAllowed(config)} connections (limits.clients of ${config.listeners.length} listeners) ` +
      `and ${config.delivery.enabled ? config.delivery.concurrency.total : 0} deliveries can need about ${needed} descriptors: ${raise}, or lower limits.clients`,
  );
}
