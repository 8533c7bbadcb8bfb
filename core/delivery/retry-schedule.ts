import type { DeliveryConfig } from '../config/schema.js';

/**
 * When to try again and when to give up, from `delivery.retry` and
 * `delivery.expireAfter`. The n-th failed attempt waits retry[n-1]; past
 * the end of the list the last step repeats (Postfix's maximal_backoff_time).
 * The last retry is pulled in to the expiry time, so an undeliverable
 * message bounces when it expires rather than up to one step later.
 */
export class RetrySchedule {
  constructor(private readonly config: Pick<DeliveryConfig, 'retry' | 'expireAfter'>) {}

  /** The wait after `attempts` failed attempts (1 for the first failure). */
  delayAfter(attempts: number): number {
    const steps = this.config.retry;
    return steps[Math.min(Math.max(attempts, 1), steps.length) - 1];
  }

  expiresAt(receivedAt: number): number {
    return receivedAt + this.config.expireAfter;
  }

  isExpired(receivedAt: number, now: number): boolean {
    return now >= this.expiresAt(receivedAt);
  }

  /** The next attempt after `attempts` failures at `now`, never later than the expiry. */
  nextAttemptAt(receivedAt: number, attempts: number, now: number): number {
    return Math.min(now + this.delayAfter(attempts), Math.max(now, this.expiresAt(receivedAt)));
  }
}
