import type { BackoffSettings } from './shaping-rules.js';

/** A change of a destination's connection limit, for the log. */
export interface BackoffChange {
  readonly kind: 'slowed' | 'recovering' | 'recovered';
  readonly from: number;
  readonly to: number;
  /** When slowed: nothing new starts before this (epoch ms). */
  readonly pausedUntil?: number;
  readonly pauseMs?: number;
}

/**
 * How many connections a destination gets while it tells us to slow down:
 * multiplicative decrease, additive increase, as TCP and Postfix's
 * destination concurrency feedback do.
 *
 * A "slow down" reply halves the connections in use (at least 1) and pauses
 * the destination; while such replies keep coming, each pause is twice the
 * last, up to `maxPauseMs`. Every `recoverAfter` successful deliveries give
 * one connection back, until the configured maximum is reached; then the
 * pause length starts from `pauseMs` again.
 *
 * Deliveries carry the generation they started in: replies from deliveries
 * that were already running when the destination was slowed down do not slow
 * it again (one reaction per round, or five parallel 421s would divide by 32),
 * and their successes do not count towards recovery.
 */
export class ConnectionBackoff {
  #limit: number;
  #generation = 0;
  #pausedUntil = 0;
  #nextPauseMs: number;
  #successes = 0;

  constructor(
    private readonly maxConnections: number,
    private readonly settings: BackoffSettings,
  ) {
    this.#limit = maxConnections;
    this.#nextPauseMs = settings.pauseMs;
  }

  /** Connections allowed now. */
  get limit(): number {
    return this.#limit;
  }

  get generation(): number {
    return this.#generation;
  }

  /** Nothing new starts before this (epoch ms); 0 when not paused. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** Whether the destination runs at its full limit with nothing left to recover. */
  get settled(): boolean {
    return this.#limit === this.maxConnections && this.#nextPauseMs === this.settings.pauseMs;
  }

  /** A delivery of `generation` got a "slow down" reply while `inUse` deliveries ran (itself included). */
  slowDown(generation: number, inUse: number, now: number): BackoffChange | undefined {
    if (generation !== this.#generation) return undefined;
    const from = this.#limit;
    const pauseMs = this.#nextPauseMs;
    this.#generation++;
    this.#limit = Math.max(1, Math.floor(Math.min(this.#limit, inUse) / 2));
    this.#pausedUntil = now + pauseMs;
    this.#nextPauseMs = Math.min(pauseMs * 2, this.settings.maxPauseMs);
    this.#successes = 0;
    return { kind: 'slowed', from, to: this.#limit, pausedUntil: this.#pausedUntil, pauseMs };
  }

  /** A delivery of `generation` went through without being told to slow down. */
  succeeded(generation: number): BackoffChange | undefined {
    if (generation !== this.#generation || this.settled) return undefined;
    if (++this.#successes < this.settings.recoverAfter) return undefined;
    this.#successes = 0;
    const from = this.#limit;
    this.#limit = Math.min(this.#limit + 1, this.maxConnections);
    if (this.#limit < this.maxConnections) return { kind: 'recovering', from, to: this.#limit };
    this.#nextPauseMs = this.settings.pauseMs;
    return { kind: 'recovered', from, to: this.#limit };
  }
}
