import type { Counter } from 'prom-client';
import { type HookResult, type LimitStore, type Logger, next, noteFinding, type Session, type TakeMode } from 'petrel';
import { answerFor, STORE_UNAVAILABLE, type Refusal } from './answers.js';
import type { Rule } from './rules.js';
import type { StoreHealth } from './store-health.js';

/** One rule's answer: within the limit, over it, or unknown (store down) with the rule failing closed. */
export type Verdict =
  | { readonly kind: 'pass' }
  | { readonly kind: 'exceeded'; readonly refusal: Refusal }
  | { readonly kind: 'unavailable'; readonly rule: Rule };

/** Something to count: `cost` units of `rule` for key `value`. */
export interface Charge {
  readonly rule: Rule;
  readonly value: string;
  readonly cost: number;
  readonly mode: TakeMode;
}

const PASS: Verdict = Object.freeze({ kind: 'pass' });

/**
 * Asks the store about rules and turns its answers into verdicts, applying
 * each rule's fail mode when the store cannot answer. The one place that
 * knows how a rule and a key value become a store key.
 */
export class LimitChecks {
  constructor(
    private readonly store: LimitStore,
    private readonly health: StoreHealth,
    private readonly keyPrefix: string,
    private readonly log: Logger,
    private readonly hits: Counter<'rule' | 'count'>,
  ) {}

  /** `<prefix>rate:<rule>:<value>` or `<prefix>slots:<rule>:<value>`; the kind keeps a renamed count from meeting an old key of another type. */
  storeKey(rule: Rule, value: string): string {
    return `${this.keyPrefix}${rule.rate ? 'rate' : 'slots'}:${rule.name}:${value}`;
  }

  /** Takes (or with `dryRun`, asks about) a charge. */
  async take(charge: Charge, dryRun: boolean): Promise<Verdict> {
    const { rule, value, cost, mode } = charge;
    const rate = rule.rate;
    if (!rate) throw new TypeError(`rule ${rule.name} has no rate`);
    return this.#ask(rule, async () => {
      const budget = await this.store.take(this.storeKey(rule, value), rate, cost, { mode, dryRun });
      return budget.allowed ? PASS : this.#exceeded({ rule, value, retryAfterMs: budget.retryAfterMs });
    });
  }

  /** Holds one concurrency slot of `rule` for `value`. */
  acquire(rule: Rule, value: string, holder: string): Promise<Verdict> {
    return this.#ask(rule, async () => {
      const slot = await this.store.acquire(this.storeKey(rule, value), holder, rule.limit);
      return slot.allowed ? PASS : this.#exceeded({ rule, value });
    });
  }

  /** Gives a slot back. A store that is down lets it expire instead (the Redis lease). */
  async release(key: string, holder: string): Promise<void> {
    await this.store.release(key, holder).catch((error: unknown) => {
      this.log.debug({ key, err: error }, 'could not release a concurrency slot; its lease will expire');
    });
  }

  async #ask(rule: Rule, run: () => Promise<Verdict>): Promise<Verdict> {
    try {
      const verdict = await run();
      this.health.succeeded();
      return verdict;
    } catch (error) {
      this.health.failed(rule, error);
      return rule.failMode === 'open' ? PASS : { kind: 'unavailable', rule };
    }
  }

  #exceeded(refusal: Refusal): Verdict {
    this.log.info({ rule: refusal.rule.name, count: refusal.rule.count, key: refusal.rule.key, value: refusal.value }, 'rate limit exceeded');
    this.hits.inc({ rule: refusal.rule.name, count: refusal.rule.count });
    return { kind: 'exceeded', refusal };
  }
}

/**
 * The first verdict that is not a pass, as the hook's answer (rules keep
 * config order); next() when all pass. A limit hit is noted in the
 * session's history and trace, with the rule and key that were over.
 */
export function resultOf(verdicts: readonly Verdict[], session: Session): HookResult {
  for (const verdict of verdicts) {
    if (verdict.kind === 'exceeded') {
      noteFinding(session, 'rate-limit', `limit hit: rule ${verdict.refusal.rule.name} for ${verdict.refusal.value}`);
      return answerFor(verdict.refusal);
    }
    if (verdict.kind === 'unavailable') return STORE_UNAVAILABLE;
  }
  return next();
}

/** Whether every verdict passed. */
export function allPass(verdicts: readonly Verdict[]): boolean {
  return verdicts.every((verdict) => verdict.kind === 'pass');
}
