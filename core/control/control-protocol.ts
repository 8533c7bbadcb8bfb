import { join } from 'node:path';
import type { QueueFilter } from '../queue/contract.js';

/**
 * The control channel between `petrel queue ...` / `petrel reload` and a running server: a
 * Unix socket in the data directory (mode 0600, so only the user the server
 * runs as, and root, may use it), one JSON request line, one JSON answer
 * line, then the connection closes.
 */
export type ControlRequest =
  | { readonly op: 'list'; readonly filter: QueueFilter }
  | { readonly op: 'stats' }
  | { readonly op: 'show' | 'hold' | 'release' | 'delete' | 'bounce'; readonly id: string }
  | { readonly op: 'retry'; readonly id: string | 'all' }
  | { readonly op: 'why'; readonly query: string; readonly since?: number; readonly limit?: number }
  | { readonly op: 'reload' };

/** The requests that act on the queue (everything but reload). */
export type QueueRequest = Exclude<ControlRequest, { op: 'reload' }>;

export type ControlResponse = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: string };

export const CONTROL_OPS = ['list', 'stats', 'show', 'hold', 'release', 'delete', 'bounce', 'retry', 'why', 'reload'] as const;

/** Where a server with this data directory listens for control requests. */
export function controlSocketPath(dataDir: string): string {
  return join(dataDir, 'control.sock');
}
