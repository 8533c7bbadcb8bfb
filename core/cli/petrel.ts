#!/usr/bin/env node
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { PetrelError } from '../errors.js';
import { checkConfigCommand } from './commands/check-config.js';
import { reloadCommand } from './commands/reload.js';
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
  check-config           validate the config (and plugin options); exit 1 on problems
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

options:
  -c, --config FILE      config file (default: $PETREL_CONFIG or ./mta.config.yaml)
  -h, --help             this text
`;

export interface CliContext {
  readonly configFile: string;
  readonly args: string[];
  readonly flags: Record<string, string | boolean | undefined>;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
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
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const context: CliContext = {
    configFile: values.config ?? process.env.PETREL_CONFIG ?? 'mta.config.yaml',
    args,
    flags: values,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`petrel: ${line}\n`),
  };
  switch (command) {
    case 'start':
      return startCommand(context);
    case 'reload':
      return reloadCommand(context);
    case 'check-config':
      return checkConfigCommand(context);
    case 'config':
      return configCommand(context);
    case 'queue':
      return queueCommand(context);
    case 'user':
      return userCommand(context);
    case 'limits':
      return limitsCommand(context);
    case 'dkim':
      return dkimCommand(context);
    default:
      process.stderr.write(`petrel: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`petrel: ${error.message}\n`);
    } else if (error instanceof PetrelError) {
      process.stderr.write(`petrel: ${error.message} [${error.code}]\n`);
    } else if ((error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`petrel: ${(error as Error).message}\n\n${USAGE}`);
    } else {
      process.stderr.write(`petrel: ${(error as Error)?.stack ?? String(error)}\n`);
    }
    process.exitCode = 1;
  },
);
