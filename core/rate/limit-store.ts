import type { Budget, Rate, TakeMode } from './gcra.js';

export interface TakeOptions {
  readonly mode: TakeMode;
  /** Only ask whether it would be allowed; change nothing. */
  readonly dryRun: boolean;
}

export interface SlotResult {
  readonly allowed: boolean;
  /** Holders of the key after the call (including this one when allowed). */
  readonly count: number;
}

/**
 * Where counters live. Two implementations behind this one interface: the
 * memory store (one node) and the Redis store (shared by every node pointing
 * at the same Redis). Keys are opaque strings built by the caller. The
 * rate-limit plugin counts clients with them, outbound shaping
 * (core/delivery/destination-rates.ts) counts messages per destination.
 *
 * A store that cannot answer (Redis down, too slow) throws; the caller then
 * applies the rule's fail mode. The memory store never throws.
 */
export interface LimitStore {
  readonly kind: 'memory' | 'redis';
  /** Rate limits (GCRA): take `cost` units from the key's budget when allowed. */
  take(key: string, rate: Rate, cost: number, options: TakeOptions): Promise<Budget>;
  /** Concurrency limits: hold one of `limit` slots of `key` as `holder`. Holding it already is allowed. */
  acquire(key: string, holder: string, limit: number): Promise<SlotResult>;
  /** Gives the slot back; a slot not held is ignored. */
  release(key: string, holder: string): Promise<void>;
  /** How many slots of `key` are held right now. */
  holders(key: string): Promise<number>;
  /** Forgets the key (rate or concurrency). Resolves to whether there was anything to forget. */
  reset(key: string): Promise<boolean>;
  start(): void;
  close(): Promise<void>;
}

/** Thrown by a store that could not answer in time; the rule's fail mode decides what happens. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
