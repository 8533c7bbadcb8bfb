import type { Clock } from '../clock.js';
import { gcraBudget, gcraDecide, type Budget, type Rate } from './gcra.js';
import type { LimitStore, SlotResult, TakeOptions } from './limit-store.js';

/** How often keys whose budget is full again are dropped, so memory tracks active clients only. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Counters in this process: the single-node default. Exact and free, but
 * each node counts on its own (two nodes with "10 a minute" let 20 through)
 * and a restart forgets everything. Uses the injected clock, so tests can
 * move time.
 */
export class MemoryStore implements LimitStore {
  readonly kind = 'memory' as const;
  readonly #tats = new Map<string, number>();
  readonly #slots = new Map<string, Set<string>>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly clock: Clock) {}

  async take(key: string, rate: Rate, cost: number, options: TakeOptions): Promise<Budget> {
    const now = this.clock.now();
    const tat = this.#tats.get(key) ?? now;
    const { allowed, newTat } = gcraDecide(rate, tat, now, cost, options.mode);
    const changes = allowed && !options.dryRun && cost > 0;
    if (changes) this.#tats.set(key, newTat);
    return gcraBudget(rate, changes ? newTat : tat, now, cost, options.mode, allowed);
  }

  async acquire(key: string, holder: string, limit: number): Promise<SlotResult> {
    const slots = this.#slots.get(key) ?? new Set<string>();
    if (!slots.has(holder) && slots.size >= limit) return { allowed: false, count: slots.size };
    slots.add(holder);
    this.#slots.set(key, slots);
    return { allowed: true, count: slots.size };
  }

  async release(key: string, holder: string): Promise<void> {
    const slots = this.#slots.get(key);
    if (!slots) return;
    slots.delete(holder);
    if (slots.size === 0) this.#slots.delete(key);
  }

  async holders(key: string): Promise<number> {
    return this.#slots.get(key)?.size ?? 0;
  }

  async reset(key: string): Promise<boolean> {
    const hadRate = this.#tats.delete(key);
    const hadSlots = this.#slots.delete(key);
    return hadRate || hadSlots;
  }

  start(): void {
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#tats.clear();
    this.#slots.clear();
  }

  #sweep(): void {
    const now = this.clock.now();
    for (const [key, tat] of this.#tats) if (tat <= now) this.#tats.delete(key);
  }
}
