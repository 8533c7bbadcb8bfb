import { runSendmail } from '../../sendmail/sendmail.js';

/**
 * `petrel sendmail [-t] [-i] [-f sender] [-F name] [recipient ...]`, and the
 * `sendmail` command (core/cli/sendmail.ts). It takes sendmail's flags, not
 * petrel's, so it gets the raw arguments after its name.
 */
export function sendmailCommand(argv: readonly string[]): Promise<number> {
  return runSendmail(argv, {
    stdin: process.stdin,
    out: (text) => process.stdout.write(text),
    err: (line) => process.stderr.write(`sendmail: ${line}\n`),
    env: process.env,
  });
}
