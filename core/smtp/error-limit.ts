export interface ErrorLimits {
  /** Errors after which every reply waits `errorDelay` (from the next command on). */
  readonly softErrorLimit: number;
  /** Errors after which the client is disconnected. */
  readonly hardErrorLimit: number;
  readonly errorDelay: number;
}

/**
 * Errors one session made without getting a message accepted, as Postfix
 * counts them (smtpd_soft_error_limit, smtpd_error_sleep_time,
 * smtpd_hard_error_limit). A client probing for valid addresses (RCPT after
 * RCPT to unknown users), guessing passwords or sending junk collects errors
 * fast: once it has made `softErrorLimit` errors each of its commands waits
 * `errorDelay` before it is answered (Postfix's smtpd_chat_reply sleeps while
 * the count is at least smtpd_soft_error_limit), at the hard limit it gets
 * 421 4.7.0 and the connection is closed. A message accepted starts the count
 * again, so a mailing list with a few stale addresses per message is never
 * slowed down.
 *
 * Every 4xx and 5xx reply counts (a 421 ends the session anyway), but for
 * `452 4.5.3` to a recipient past `limits.recipients`: RFC 5321 4.5.3.1.10
 * has the client send those in another transaction, and a large message
 * pipelining its recipients would otherwise be cut off before DATA on every
 * try (Postfix does not count them either, up to smtpd_recipient_overshoot_limit,
 * 1000 a transaction; here the session limits bound them).
 */
const TOO_MANY_RECIPIENTS = '4.5.3';

export class ErrorLimit {
  #errors = 0;

  constructor(private readonly limits: ErrorLimits) {}

  /** Counts a reply (`enhanced`: its enhanced status code); true when this one reached the hard limit and the client must go. */
  replied(code: number, enhanced: string, messageAccepted: boolean): boolean {
    if (messageAccepted) {
      this.#errors = 0;
      return false;
    }
    if (code < 400 || code === 421 || (code === 452 && enhanced === TOO_MANY_RECIPIENTS)) return false;
    this.#errors++;
    return this.#errors >= this.limits.hardErrorLimit;
  }

  /** How long to wait before handling the client's next command. */
  delay(): number {
    return this.#errors >= this.limits.softErrorLimit ? this.limits.errorDelay : 0;
  }
}
