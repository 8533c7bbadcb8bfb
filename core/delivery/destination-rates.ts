import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import type { Budget } from '../rate/gcra.js';
import type { LimitStore } from '../rate/limit-store.js';
import type { DestinationRate } from './shaping-rules.js';

/**
 * Message rates per destination, counted by the same GCRA stores as the
 * rate-limit plugin: memory (this node) or Redis (every node sharing it).
 *
 * A store that cannot answer (Redis down) lets mail through: shaping protects
 * a destination from us, and a Redis outage must not stop outbound mail. The
 * log says so once when it starts and once when the store is back.
 */
export class DestinationRates {
  #downSince: number | undefined;

  constructor(
    private readonly store: LimitStore,
    private readonly keyPrefix: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /**
   * Takes one message from each rate of `key` if every rate has one to give
   * now. Resolves to 0 when taken, else to the ms until it would be allowed.
   */
  async take(key: string, rates: readonly DestinationRate[]): Promise<number> {
    if (rates.length === 0) return 0;
    // With two rates, ask first, so a message refused by one is not counted by the other.
    if (rates.length > 1) {
      const peeks = await this.#budgets(key, rates, true);
      const wait = Math.max(0, ...peeks.map((budget) => budget?.retryAfterMs ?? 0));
      if (wait > 0) return wait;
    }
    const taken = await this.#budgets(key, rates, false);
    return Math.max(0, ...taken.map((budget) => (budget && !budget.allowed ? budget.retryAfterMs : 0)));
  }

  /**
   * When the message `ahead` places behind the next one could start by these
   * rates (epoch ms): an estimate, to decide between waiting in memory and
   * giving a message back to the queue.
   */
  async startOf(key: string, rates: readonly DestinationRate[], ahead: number): Promise<number> {
    const now = this.clock.now();
    if (rates.length === 0) return now;
    const budgets = await this.#budgets(key, rates, true);
    return Math.max(
      now,
      ...rates.map((rate, index) => {
        const budget = budgets[index];
        const needed = ahead + 1;
        if (!budget || needed <= budget.remaining) return now;
        return now + budget.retryAfterMs + (needed - Math.max(budget.remaining, 1)) * rate.intervalMs;
      }),
    );
  }

  /** One budget per rate; undefined for a rate the store could not answer about. */
  async #budgets(key: string, rates: readonly DestinationRate[], dryRun: boolean): Promise<(Budget | undefined)[]> {
    try {
      const budgets = await Promise.all(rates.map((rate) => this.store.take(`${this.keyPrefix}${key}:${rate.name}`, rate.rate, 1, { mode: 'fit', dryRun })));
      this.#available();
      return budgets;
    } catch (error) {
      this.#unavailable(error);
      return rates.map(() => undefined);
    }
  }

  #unavailable(error: unknown): void {
    if (this.#downSince !== undefined) return;
    this.#downSince = this.clock.now();
    this.log.warn({ err: error, store: this.store.kind }, `outbound rate store unavailable (${(error as Error).message}); message rates are not enforced until it is back`);
  }

  #available(): void {
    if (this.#downSince === undefined) return;
    this.log.info({ downForMs: this.clock.now() - this.#downSince }, 'outbound rate store available again; message rates are enforced');
    this.#downSince = undefined;
  }
}
