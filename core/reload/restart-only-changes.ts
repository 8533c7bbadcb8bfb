import { isDeepStrictEqual } from 'node:util';
import type { PetrelConfig } from '../config/schema.js';

/**
 * Parts of the config a reload cannot change in a running process: sockets
 * are bound, the queue and Redis connection hold state, the scheduler runs
 * with its settings. Everything else (plugins and their options, limits,
 * hook timeouts, TLS certificates, local domains, the log level) is applied.
 */
const RESTART_ONLY: readonly ((config: PetrelConfig) => [string, unknown])[] = [
  (c) => ['listeners', c.listeners],
  (c) => ['server.dataDir', c.server.dataDir],
  (c) => ['server.shutdownTimeout', c.server.shutdownTimeout],
  (c) => ['server.user', c.server.user],
  (c) => ['server.group', c.server.group],
  (c) => ['server.workers', c.server.workers],
  (c) => ['logging.format', c.logging.format],
  (c) => ['redis', c.redis],
  (c) => ['dns', c.dns],
  (c) => ['delivery', c.delivery],
  (c) => ['admin', c.admin],
  (c) => ['history', c.history],
];

/** The keys that differ between the two configs and need a restart. */
export function restartOnlyChanges(running: PetrelConfig, next: PetrelConfig): string[] {
  return RESTART_ONLY.map((pick) => [pick(running), pick(next)] as const)
    .filter(([[, before], [, after]]) => !isDeepStrictEqual(before, after))
    .map(([[key]]) => key);
}

/** True when everything but the plugin list is the same: plugins may then keep their instances. */
export function sameCoreConfig(running: PetrelConfig, next: PetrelConfig): boolean {
  const { plugins: _a, ...before } = running;
  const { plugins: _b, ...after } = next;
  return isDeepStrictEqual(before, after);
}
