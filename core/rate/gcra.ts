/**
 * The Generic Cell Rate Algorithm: a rate limit kept as one number per key,
 * the "theoretical arrival time" (TAT). A budget of `limit` units per
 * `window` refills one unit every `window / limit` ms; the TAT is the moment
 * the budget would be full again. That makes the limit exact (no fixed-window
 * edges letting 2x through), needs no list of timestamps, and is one GET and
 * one SET in Redis.
 *
 * The Redis store runs the same decision inside a Lua script (redis-store.ts)
 * so it is atomic across nodes; keep the two in step.
 */

export interface Rate {
  /** Units (messages, recipients, bytes, ...) allowed per window. */
  readonly limit: number;
  readonly windowMs: number;
}

/**
 * `fit`: the whole cost must fit in what is left (10 messages a minute: the
 * 11th is refused). `debt`: allowed while anything is left, and charged in
 * full, so one large message can overdraw the budget and delay the next ones
 * (bytes; otherwise a message larger than what is left could never pass).
 */
export type TakeMode = 'fit' | 'debt';

/** What a store answers about one key. */
export interface Budget {
  readonly allowed: boolean;
  /** Units in use now (after the take, when it was allowed and not a dry run). May exceed the limit in debt mode. */
  readonly used: number;
  readonly remaining: number;
  /** When refused: ms until the same request would be allowed. 0 when allowed. */
  readonly retryAfterMs: number;
  /** Ms until the whole budget is free again. */
  readonly resetAfterMs: number;
}

/** Rounding slack: windows divided into many small intervals (bytes) give floating-point noise. */
export const GCRA_EPSILON_MS = 0.000_001;

/** The decision for taking `cost` units at `now` from a key whose TAT is `tat` (`now` when the key is new). */
export function gcraDecide(rate: Rate, tat: number, now: number, cost: number, mode: TakeMode): { allowed: boolean; newTat: number } {
  const interval = rate.windowMs / rate.limit;
  const base = Math.max(tat, now);
  const newTat = base + cost * interval;
  const allowed = mode === 'debt' ? base - now < rate.windowMs : newTat - now <= rate.windowMs + GCRA_EPSILON_MS;
  return { allowed, newTat };
}

/** Describes a key's budget from its TAT as it stands after the decision. */
export function gcraBudget(rate: Rate, tat: number, now: number, cost: number, mode: TakeMode, allowed: boolean): Budget {
  const interval = rate.windowMs / rate.limit;
  const level = Math.max(0, tat - now);
  const used = Math.max(0, Math.ceil(level / interval - GCRA_EPSILON_MS));
  let retryAfterMs = 0;
  if (!allowed) {
    const over = mode === 'debt' ? level - rate.windowMs + interval : level + cost * interval - rate.windowMs;
    retryAfterMs = Math.max(1, Math.ceil(over));
  }
  return {
    allowed,
    used,
    remaining: Math.max(0, rate.limit - used),
    retryAfterMs,
    resetAfterMs: Math.ceil(level),
  };
}
