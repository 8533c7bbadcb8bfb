import type { Counter } from 'prom-client';
import type { Clock, Logger } from 'petrel';
import type { Rule } from './rules.js';

/** At most one "still unavailable" warning this often, however much mail arrives meanwhile. */
const REPEAT_WARNING_MS = 60_000;

/**
 * Tracks whether the store answers, and says so in the log without flooding
 * it: one warning when it stops answering (naming the rules and what their
 * fail modes do), then one a minute with the number of decisions taken
 * blind, and one line when it answers again.
 */
export class StoreHealth {
  #downSince: number | undefined;
  #lastWarning = 0;
  #blindDecisions = 0;

  /** What the first warning of an outage says each rule now does. */
  readonly #consequences: string;

  constructor(
    rules: readonly Rule[],
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly storeFailures: Counter<'rule' | 'fail_mode'>,
  ) {
    const named = (mode: Rule['failMode']) => rules.filter((rule) => rule.failMode === mode).map((rule) => rule.name).join(', ');
    this.#consequences = [
      named('open') && `rules failing open (mail passes unchecked): ${named('open')}`,
      named('closed') && `rules failing closed (451 4.3.0): ${named('closed')}`,
    ]
      .filter(Boolean)
      .join('; ');
  }

  get available(): boolean {
    return this.#downSince === undefined;
  }

  failed(rule: Rule, error: unknown): void {
    this.storeFailures.inc({ rule: rule.name, fail_mode: rule.failMode });
    const now = this.clock.now();
    if (this.#downSince === undefined) {
      this.#downSince = now;
      this.#lastWarning = now;
      this.#blindDecisions = 0;
      this.log.warn({ rule: rule.name, failMode: rule.failMode, err: error }, `rate-limit store unavailable (${(error as Error).message}); ${this.#consequences}`);
      return;
    }
    this.#blindDecisions++;
    if (now - this.#lastWarning >= REPEAT_WARNING_MS) {
      this.log.warn(
        { rule: rule.name, failMode: rule.failMode, decisions: this.#blindDecisions, downForMs: now - this.#downSince, err: error },
        `rate-limit store still unavailable; ${this.#blindDecisions} decisions taken by fail mode in the last minute`,
      );
      this.#lastWarning = now;
      this.#blindDecisions = 0;
    }
  }

  succeeded(): void {
    if (this.#downSince === undefined) return;
    this.log.info({ downForMs: this.clock.now() - this.#downSince }, 'rate-limit store available again; limits are enforced');
    this.#downSince = undefined;
  }
}
