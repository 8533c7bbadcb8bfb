#!/usr/bin/env node
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { PetrelError } from '../errors.js';
import { lineWriter } from './cli-output.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { checkConfigCommand } from './commands/check-config.js';
import { reloadCommand } from './commands/reload.js';
import { sendmailCommand } from './commands/sendmail.js';
import { configCommand } from './commands/config.js';
import { dkimCommand } from './commands/dkim.js';
import { limitsCommand } from './commands/limits.js';
import { queueCommand } from './commands/queue.js';
import { startCommand } from './commands/start.js';
import { userCommand } from './commands/user.js';

const USAGE = `usage: petrel <command> [options]

commands:
  start                  run the MTA
  reload                 make the running server re-read its config (like SIGHUP), with its answer
  check-config           validate the config (and plugin options); exit 78 on problems
  config schema          print the JSON Schema of mta.config.yaml (for editors and CI)
  queue list             list queued messages [--state active|deferred|held] [--domain D] [--sender S] [--older-than 4h]
  queue show ID          one message: envelope, recipients, attempts, last replies, headers
  queue retry ID|--all   make a message (or every message not held) due now
  queue hold ID          keep a message from being delivered until it is released
  queue release ID       release a held message (due now)
  queue delete ID        remove a message without notifying anyone
  queue bounce ID        fail every open recipient now and send the sender a DSN
  queue stats            counts by state and by destination
                         (every queue command takes --json; with a server running on the
                          same data directory it goes through the server's control socket)
  user add|passwd LOGIN  add a user or change a password (asked on the terminal, or --password-stdin)
  user remove LOGIN      remove a user
  user list              list the logins
                         (the users file of the auth-file plugin; --users-file FILE names another)
  limits show VALUE [RULE]   rate-limit counters VALUE (an IP, address, domain, user) is a key of [--json]
  limits reset VALUE [RULE]  forget those counters (lift a limit now)
  dkim keygen --domain D --selector S [--algo ed25519|rsa] [--bits N] [--out FILE] [--force]
                         make a DKIM key for dkim-sign; prints the DNS record to publish
  sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [RECIPIENT...]
                         the sendmail command for local programs: a message on stdin
                         (petrel sendmail --help for its flags)

options:
  -c, --config FILE      config file (default: $PETREL_CONFIG or ./mta.config.yaml)
  -h, --help             this text

exit status: 0 done, 1 the answer is no (no such message, reload refused), 64 usage error,
78 config error; start-up failures: docs/operations.md#exit-status
`;

export interface CliContext {
  readonly configFile: string;
  readonly args: string[];
  readonly flags: Record<string, string | boolean | undefined>;
  /** A line on stdout; quiet once nobody reads it (EPIPE). */
  readonly out: (line: string) => void;
  /** A line on stderr, prefixed `petrel: `. */
  readonly err: (line: string) => void;
  /**
   * Says what was wrong with the command line, then the command's `usage`,
   * on stderr; returns EX_USAGE (64) for the command to return.
   */
  readonly usage: (problem: string, usage: string) => number;
}

type Command = (context: CliContext) => Promise<number>;

const COMMANDS: Readonly<Record<string, Command>> = {
  start: startCommand,
  reload: reloadCommand,
  'check-config': checkConfigCommand,
  config: configCommand,
  queue: queueCommand,
  user: userCommand,
  limits: limitsCommand,
  dkim: dkimCommand,
};

const out = lineWriter(process.stdout);
const err = lineWriter(process.stderr, 'petrel: ');

function usage(problem: string, text: string): number {
  err(problem);
  process.stderr.write(`${text.trimEnd()}\n`);
  return EXIT.usage;
}

async function main(argv: string[]): Promise<number> {
  // sendmail takes sendmail's flags (-t -i -oi -f ...), not petrel's.
  if (argv[0] === 'sendmail') return sendmailCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        json: { type: 'boolean' },
        state: { type: 'string' },
        domain: { type: 'string' },
        sender: { type: 'string' },
        'password-stdin': { type: 'boolean' },
        'users-file': { type: 'string' },
        'older-than': { type: 'string' },
        all: { type: 'boolean' },
        selector: { type: 'string' },
        algo: { type: 'string' },
        bits: { type: 'string' },
        out: { type: 'string' },
        force: { type: 'boolean' },
      },
    });
  } catch (error) {
    if (String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS_')) return usage((error as Error).message, USAGE);
    throw error;
  }
  const { values, positionals } = parsed;
  const [name, ...args] = positionals;
  if (values.help || name === 'help') {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (name === undefined) return usage('which command? (petrel --help lists them)', USAGE);
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) return usage(`unknown command "${name}"`, USAGE);
  return command({
    configFile: values.config ?? process.env.PETREL_CONFIG ?? 'mta.config.yaml',
    args,
    flags: values,
    out,
    err,
    usage,
  });
}

/** One line saying what stopped the command; a stack only for what must be a bug, and only when asked for. */
function describeFailure(error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  if (error instanceof PetrelError) return `${error.message} [${error.code}]`;
  const message = (error as Error)?.message ?? String(error);
  if (typeof (error as { code?: unknown })?.code === 'string') return message;
  if (process.env.PETREL_DEBUG) return `${message}\n${(error as Error)?.stack ?? ''}`;
  return `${message} (an internal error; PETREL_DEBUG=1 shows where it happened)`;
}

let settled = false;
process.once('beforeExit', () => {
  // Nothing is left to run, yet the command has not finished: something awaited a promise that can never settle.
  if (settled) return;
  err('stopped: the command was waiting for something that can no longer happen (an internal error)');
  process.exitCode = EXIT.software;
});

main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (error: unknown) => {
    settled = true;
    err(describeFailure(error));
    process.exitCode = exitCodeFor(error);
    // What failed (a plugin whose start hung) may still hold handles that would keep the process alive.
    setTimeout(() => process.exit(), 2000).unref();
  },
);
