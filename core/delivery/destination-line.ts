import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import { describeDuration } from '../util/describe-duration.js';
import { ConnectionBackoff, type BackoffChange } from './connection-backoff.js';
import type { DestinationRates } from './destination-rates.js';
import { formatReply, type DeliveryLimits, type RecipientResult } from './outbound.js';
import type { ShapingLimits } from './shaping-rules.js';
import type { ThrottleReplies } from './throttle-replies.js';

/** What the scheduler is told about a group it wants to deliver. */
export type Admission =
  /** Deliver now; call `ticket.finish` when done. */
  | { readonly kind: 'start'; readonly ticket: DeliveryTicket }
  /** Not now: give the message back to the queue, due at `at` (epoch ms). */
  | { readonly kind: 'later'; readonly at: number };

/** One running delivery to a destination. */
export interface DeliveryTicket {
  /** For the target (`Delivery.limits`): its connection pool should stay within them. */
  readonly limits: DeliveryLimits;
  /** Frees the connection and learns from the results (undefined: the target failed, nothing to learn). Once. */
  finish(results: readonly RecipientResult[] | undefined): void;
}

/** A destination's state for operators (admin API, logs). */
export interface LineSnapshot {
  readonly destination: string;
  readonly rule: string;
  readonly running: number;
  readonly waiting: number;
  readonly connections: number;
  readonly maxConnections: number;
  /** Set while paused after a "slow down" reply (epoch ms). */
  readonly pausedUntil?: number;
}

export interface LineDeps {
  /** Unique per line; the rate keys in the store start with it. */
  readonly key: string;
  /** The destination as logs show it (a domain, an MX host, host:port). */
  readonly destination: string;
  readonly limits: ShapingLimits;
  readonly rates: DestinationRates;
  readonly replies: ThrottleReplies;
  readonly clock: Clock;
  readonly log: Logger;
}

interface Waiter {
  /** Past this (epoch ms) the waiter leaves the line and its message goes back to the queue. */
  readonly startBy: number;
  readonly resolve: (admission: Admission) => void;
  timer?: NodeJS.Timeout;
}

/** How many recent completions measure how fast the line drains. */
const DRAIN_SAMPLES = 10;
/** A message given back is not due again sooner than this, whatever the estimate: no tight lease loops. */
const MIN_POSTPONE_MS = 1_000;

/**
 * The deliveries to one destination: at most `limit` run at once (the
 * configured maximum, lowered while the destination backs off), no new one
 * starts during a back-off pause, and each start takes one message from the
 * destination's rates. Groups that cannot start wait in a first-come,
 * first-served line in memory: a promise, with one timer for the line (the
 * end of a pause, the next rate unit) and one per waiter (its `startBy`), so
 * waiting costs no CPU.
 *
 * A group only joins the line when its turn is expected before its
 * `startBy`; otherwise, or when `startBy` passes in the line, it is answered
 * `later` with the time its turn is expected, and the scheduler gives the
 * message back to the queue until then: it holds no lease and no worker
 * meanwhile. Those times are spaced at the destination's pace (a reservation
 * pointer), so messages given back come due one after another instead of all
 * at once.
 */
export class DestinationLine {
  readonly #deps: LineDeps;
  readonly #waiting = new Set<Waiter>();
  /** Start times of the running deliveries, by ticket number. */
  readonly #running = new Map<number, number>();
  /** When the last few deliveries finished (oldest first). */
  readonly #completions: number[] = [];
  readonly #backoff: ConnectionBackoff;
  #nextTicket = 0;
  #reservedUntil = 0;
  #lastActivity: number;
  #wake: { timer: NodeJS.Timeout; at: number } | undefined;
  #pumping = false;
  #pumpAgain = false;
  /** A rate unit taken for a waiter that left meanwhile: the next one uses it. */
  #prepaid = false;
  #closed = false;
  /** Admissions still estimating their turn: not yet in the line, but the line is in use. */
  #admitting = 0;

  constructor(deps: LineDeps) {
    this.#deps = deps;
    this.#backoff = new ConnectionBackoff(deps.limits.maxConnections, deps.limits.backoff);
    this.#lastActivity = deps.clock.now();
  }

  /** Asks to deliver to this destination; waits in line (in memory) at most until `startBy`. */
  async admit(startBy: number): Promise<Admission> {
    const now = this.#deps.clock.now();
    this.#lastActivity = now;
    if (this.#closed) return { kind: 'later', at: now };
    let expected: number;
    this.#admitting++;
    try {
      expected = await this.#expectedStart(this.#waiting.size, now);
    } finally {
      this.#admitting--;
    }
    if (this.#closed) return { kind: 'later', at: now };
    if (expected > startBy) return { kind: 'later', at: this.#reserve(expected) };
    return new Promise<Admission>((resolve) => {
      const waiter: Waiter = { startBy, resolve };
      waiter.timer = setTimeout(() => void this.#giveUp(waiter), Math.max(0, startBy - now));
      this.#waiting.add(waiter);
      void this.#pump();
    });
  }

  /** No delivery running or waiting, nothing to recover, nothing reserved: the line can be forgotten. */
  idle(now: number, forgetAfterMs: number): boolean {
    if (this.#running.size > 0 || this.#waiting.size > 0 || this.#admitting > 0 || this.#reservedUntil > now) return false;
    return this.#backoff.settled || now - this.#lastActivity > forgetAfterMs;
  }

  /** Lets every waiter go (shutdown): their messages are due again at once. */
  close(): void {
    this.#closed = true;
    this.#clearWake();
    const now = this.#deps.clock.now();
    for (const waiter of this.#waiting) {
      clearTimeout(waiter.timer);
      waiter.resolve({ kind: 'later', at: now });
    }
    this.#waiting.clear();
  }

  snapshot(): LineSnapshot {
    const pausedUntil = this.#backoff.pausedUntil;
    return {
      destination: this.#deps.destination,
      rule: this.#deps.limits.rule,
      running: this.#running.size,
      waiting: this.#waiting.size,
      connections: this.#backoff.limit,
      maxConnections: this.#deps.limits.maxConnections,
      ...(pausedUntil > this.#deps.clock.now() ? { pausedUntil } : {}),
    };
  }

  /** Starts waiters while connections, pause and rates allow; serialised, since taking a rate unit is async. */
  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        while (this.#waiting.size > 0 && this.#running.size < this.#backoff.limit && !this.#closed) {
          const now = this.#deps.clock.now();
          if (now < this.#backoff.pausedUntil) {
            this.#wakeAt(this.#backoff.pausedUntil);
            break;
          }
          if (!this.#prepaid) {
            const wait = await this.#deps.rates.take(this.#deps.key, this.#deps.limits.rates);
            if (wait > 0) {
              this.#wakeAt(this.#deps.clock.now() + wait);
              break;
            }
            this.#prepaid = true;
          }
          const [waiter] = this.#waiting;
          if (!waiter) break; // it left while the store answered; the unit stays prepaid
          this.#prepaid = false;
          this.#waiting.delete(waiter);
          clearTimeout(waiter.timer);
          waiter.resolve({ kind: 'start', ticket: this.#ticket() });
        }
      } while (this.#pumpAgain);
    } catch (error) {
      // Nothing above should throw; if it does, the waiters still leave at their startBy.
      this.#deps.log.error({ err: error, destination: this.#deps.destination }, `outbound shaping failed: ${(error as Error).message}`);
    } finally {
      this.#pumping = false;
    }
  }

  #ticket(): DeliveryTicket {
    const number = ++this.#nextTicket;
    // Completions from before an idle spell say nothing about the pace now; kept, they
    // would make the first wait after a pause look seconds long per place in line.
    if (this.#running.size === 0) this.#completions.length = 0;
    this.#running.set(number, this.#deps.clock.now());
    const generation = this.#backoff.generation;
    const { messagesPerConnection } = this.#deps.limits;
    let finished = false;
    return {
      limits: { maxConnections: this.#backoff.limit, ...(messagesPerConnection !== undefined ? { messagesPerConnection } : {}) },
      finish: (results) => {
        if (finished) return;
        finished = true;
        this.#finish(number, generation, results);
      },
    };
  }

  #finish(ticket: number, generation: number, results: readonly RecipientResult[] | undefined): void {
    const now = this.#deps.clock.now();
    const inUse = this.#running.size;
    this.#running.delete(ticket);
    this.#lastActivity = now;
    this.#completions.push(now);
    if (this.#completions.length > DRAIN_SAMPLES) this.#completions.shift();
    const feedback = results ? this.#deps.replies.feedback(results) : { kind: 'none' as const };
    if (feedback.kind === 'slow-down') this.#report(this.#backoff.slowDown(generation, inUse, now), feedback.reply);
    else if (feedback.kind === 'answered') this.#report(this.#backoff.succeeded(generation));
    void this.#pump();
  }

  #report(change: BackoffChange | undefined, reply?: RecipientResult['reply']): void {
    if (!change) return;
    const { destination, limits, log } = this.#deps;
    const fields = { destination, rule: limits.rule, connections: change.to, maxConnections: limits.maxConnections };
    if (change.kind === 'slowed') {
      const said = reply ? formatReply(reply) : 'slow down';
      log.warn(
        { ...fields, reply: said, pauseMs: change.pauseMs, pausedUntil: change.pausedUntil },
        `${destination} asked us to slow down (${said}): connections ${change.from} → ${change.to}, nothing new for ${describeDuration(change.pauseMs ?? 0)}`,
      );
    } else if (change.kind === 'recovering') {
      log.info(fields, `${destination} accepts mail again: connections ${change.from} → ${change.to}`);
    } else {
      log.info(fields, `${destination} recovered: back to ${change.to} connections`);
    }
  }

  /** A waiter whose `startBy` came: it leaves the line, due again when its turn is expected now. */
  async #giveUp(waiter: Waiter): Promise<void> {
    if (!this.#waiting.delete(waiter)) return;
    const expected = await this.#expectedStart(this.#waiting.size, this.#deps.clock.now());
    waiter.resolve({ kind: 'later', at: this.#reserve(expected) });
  }

  /**
   * When a group with `ahead` groups in front of it could start: after a
   * pause, when the rates have a unit for it, and when a connection is free
   * (at the pace deliveries to the destination have been finishing lately).
   */
  async #expectedStart(ahead: number, now: number): Promise<number> {
    const { rates, key, limits } = this.#deps;
    let start = Math.max(now, this.#backoff.pausedUntil);
    if (limits.rates.length > 0) start = Math.max(start, await rates.startOf(key, limits.rates, ahead));
    const behind = this.#running.size + ahead + 1 - this.#backoff.limit;
    if (behind > 0) start = Math.max(start, now + behind * this.#msPerCompletion(now));
    return start;
  }

  /**
   * How long the line takes to move up one place: the time since the oldest
   * of the last few completions, divided by their number. Measured over the
   * line as a whole (all its connections), and growing by itself when
   * completions stop. 0 while too few have finished to tell: a group then
   * joins the line, and its startBy still bounds the wait.
   */
  #msPerCompletion(now: number): number {
    if (this.#completions.length < 2) return 0;
    return (now - this.#completions[0]) / this.#completions.length;
  }

  /**
   * A due time for a message given back: at its expected turn, and after the
   * ones given back before it by the configured rates' pace. Not by the
   * observed completion pace: messages given back would then arrive at that
   * pace, completions would follow it, and a line slowed once would stay slow.
   */
  #reserve(expected: number): number {
    const now = this.#deps.clock.now();
    const pace = Math.max(0, ...this.#deps.limits.rates.map((rate) => rate.intervalMs));
    const at = Math.max(expected, this.#reservedUntil + pace, now + MIN_POSTPONE_MS);
    this.#reservedUntil = at;
    return Math.ceil(at);
  }

  #wakeAt(at: number): void {
    if (this.#wake && this.#wake.at <= at) return;
    this.#clearWake();
    const timer = setTimeout(() => {
      this.#wake = undefined;
      void this.#pump();
    }, Math.max(0, at - this.#deps.clock.now()));
    this.#wake = { timer, at };
  }

  #clearWake(): void {
    if (this.#wake) clearTimeout(this.#wake.timer);
    this.#wake = undefined;
  }
}
