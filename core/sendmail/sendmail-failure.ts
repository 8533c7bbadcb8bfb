import type { ExitCode } from '../cli/exit-codes.js';

/**
 * A failure that ends `petrel sendmail` with `code` (sendmail's exit codes,
 * which cron, PHP's mail() and other callers understand: 75 means try again
 * later) and one line on stderr; nothing was kept.
 */
export class SendmailFailure extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'SendmailFailure';
  }
}
