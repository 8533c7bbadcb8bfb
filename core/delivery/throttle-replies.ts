import { formatReply, type DeliveryReply, type RecipientResult } from './outbound.js';

/** What one delivery tells the shaper about its destination. */
export type DeliveryFeedback =
  | { readonly kind: 'slow-down'; readonly reply: DeliveryReply }
  /** The server answered normally: something was delivered or refused for good. */
  | { readonly kind: 'answered' }
  /** Nothing to learn: a connection failure, a local error, only ordinary deferrals (greylisting). */
  | { readonly kind: 'none' };

/**
 * Recognises a destination asking us to slow down: `421` (closing the
 * connection; servers use it for "too many connections" and load shedding),
 * or another 4xx whose enhanced code or text matches one of the patterns
 * (`delivery.shaping.throttleReplies`: "too many", "rate", "busy", ...).
 * Ordinary temporary failures (greylisting, a full mailbox) are not load
 * signals and must not slow down a whole domain.
 */
export class ThrottleReplies {
  readonly #patterns: readonly RegExp[];

  constructor(patterns: readonly string[]) {
    this.#patterns = patterns.map((source) => new RegExp(source, 'i'));
  }

  isSlowDown(reply: DeliveryReply): boolean {
    if (reply.code === 421) return true;
    if (reply.code < 400 || reply.code >= 500) return false;
    const text = formatReply(reply);
    return this.#patterns.some((pattern) => pattern.test(text));
  }

  /** What the results of one delivery say about its destination. */
  feedback(results: readonly RecipientResult[]): DeliveryFeedback {
    for (const result of results) {
      if (result.status === 'deferred' && this.isSlowDown(result.reply)) return { kind: 'slow-down', reply: result.reply };
    }
    return results.some((result) => result.status !== 'deferred') ? { kind: 'answered' } : { kind: 'none' };
  }
}
