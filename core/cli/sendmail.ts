#!/usr/bin/env node
import { sendmailCommand } from './commands/sendmail.js';

/**
 * The `sendmail` command the package installs beside `petrel`: the same as
 * `petrel sendmail`, for programs that run /usr/sbin/sendmail (link it there:
 * `ln -sf "$(npm prefix -g)/bin/sendmail" /usr/sbin/sendmail` after `npm install -g`).
 */
sendmailCommand(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
