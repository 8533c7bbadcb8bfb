import { availableParallelism } from 'node:os';
import type { QueueRequest } from '../control/control-protocol.js';
import type { WorkerSlot } from '../paths.js';
import type { SessionEvent, TraceSide } from '../trace/trace-event.js';
import type { TraceSubject } from '../trace/trace-subject.js';

/**
 * What the primary and its workers say to each other over the IPC channel
 * of child_process.fork (JSON). Workers never talk to each other: a request
 * for the whole server (a queue command, /metrics, a reload) goes to the
 * primary, which asks every worker and returns all their answers.
 */

/** What one worker is asked, about its own share of the server. */
export type WorkerRequest =
  | { readonly op: 'queue'; readonly request: QueueRequest }
  /** The message as stored, base64, or null when this worker's queue does not hold it. */
  | { readonly op: 'raw'; readonly id: string }
  | { readonly op: 'reload' }
  /** prom-client's getMetricsAsJSON() of the worker's registry. */
  | { readonly op: 'metrics' }
  /** The /ready checks of the worker: name → 'ok' or why it fails. */
  | { readonly op: 'readiness' };

export interface WorkerAnswer {
  readonly worker: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

/** A call on an ExpiringStore the primary keeps for every worker (see shared-expiring-store.ts). */
export interface StoreCall {
  readonly namespace: string;
  readonly method: 'increment' | 'decrement' | 'get' | 'set' | 'setIfAbsent' | 'delete';
  readonly args: readonly (string | number)[];
}

export type WorkerMessage =
  /** Worker 0: whether it has trace watchers on each side now (the primary tells the others). */
  | { readonly kind: 'trace-watched'; readonly watched: Record<TraceSide, boolean> }
  /** Another worker: an event for worker 0's trace watchers. */
  | { readonly kind: 'trace'; readonly event: SessionEvent; readonly subject: TraceSubject }
  /** A worker calls a store the primary keeps for all. */
  | { readonly kind: 'store'; readonly id: number; readonly call: StoreCall }
  /** The worker serves connections; the ports its listeners are bound to, by listener name. */
  | { readonly kind: 'ready'; readonly ports: Record<string, number> }
  /** A worker asks every worker (itself included). */
  | { readonly kind: 'ask'; readonly id: number; readonly request: WorkerRequest }
  /** The answer to a primary's `request`. */
  | { readonly kind: 'reply'; readonly id: number; readonly ok: boolean; readonly result?: unknown; readonly error?: string };

export type PrimaryMessage =
  | { readonly kind: 'trace-watched'; readonly watched: Record<TraceSide, boolean> }
  | { readonly kind: 'trace'; readonly event: SessionEvent; readonly subject: TraceSubject }
  | { readonly kind: 'stored'; readonly id: number; readonly ok: boolean; readonly result?: unknown; readonly error?: string }
  | { readonly kind: 'request'; readonly id: number; readonly request: WorkerRequest }
  | { readonly kind: 'answers'; readonly id: number; readonly answers: readonly WorkerAnswer[] };

/** The environment variable that makes `petrel start` a worker: JSON of WorkerLaunch. */
export const WORKER_ENV = 'PETREL_WORKER';

export interface WorkerLaunch extends WorkerSlot {
  /** Ports the primary learned from worker 0 for listeners configured with port 0 (the others bind the same). */
  readonly ports: Record<string, number>;
}

/** The launch a worker was started with, or undefined in a single process or the primary. */
export function workerLaunchFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerLaunch | undefined {
  const text = env[WORKER_ENV];
  if (!text || typeof process.send !== 'function') return undefined;
  const launch = JSON.parse(text) as WorkerLaunch;
  return { index: launch.index, count: launch.count, ports: launch.ports ?? {} };
}

/** `server.workers` as a number: `auto` is one per core the process may use. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}
