/**
 * sendmail's exit codes (sysexits.h), which cron, PHP's mail() and other
 * callers of /usr/sbin/sendmail understand: 0 means the message is stored
 * and will be delivered (or bounced); 75 means try again later.
 */
export const EXIT = {
  OK: 0,
  /** Bad options or arguments, or no recipients. */
  USAGE: 64,
  /** The message itself is unusable (too large, unreadable input, bad addresses in it). */
  DATAERR: 65,
  /** An unexpected error in Petrel. */
  SOFTWARE: 70,
  /** The system let us down: no login name for this uid. */
  OSERR: 71,
  /** Could not store the message now; nothing was kept. Try again. */
  TEMPFAIL: 75,
  /** Not allowed to write into the maildrop directory. */
  NOPERM: 77,
  /** The configuration cannot be read or is invalid. */
  CONFIG: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure that ends `petrel sendmail` with `code` and one line on stderr. */
export class SendmailFailure extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'SendmailFailure';
  }
}
