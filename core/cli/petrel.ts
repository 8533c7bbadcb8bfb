#!/usr/bin/env node
import 'reflect-metadata';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { PetrelError } from '../errors.js';
import { didYouMean } from '../util/nearest-name.js';
import { PETREL_VERSION } from '../version.js';
import { lineWriter } from './cli-output.js';
import { commandContext, usageError } from './command-context.js';
import { checkConfigCommand } from './commands/check-config.js';
import { configCommand } from './commands/config.js';
import { initCommand } from './commands/init.js';
import { pluginCommand } from './commands/plugin.js';
import { queueCommand } from './commands/queue.js';
import { reloadCommand } from './commands/reload.js';
import { sendmailCommand } from './commands/sendmail.js';
import { startCommand } from './commands/start.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { CORE_USAGE, helpText } from './help.js';
import { discoverPluginCommands } from './plugin-commands.js';
import { traceCommand } from './commands/trace.js';
import { whyCommand } from './commands/why.js';

export interface CliContext {
  readonly configFile: string;
  readonly args: string[];
  readonly flags: Record<string, string | boolean | string[] | undefined>;
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
type Options = NonNullable<ParseArgsConfig['options']>;

/** What every command takes. */
const GLOBAL_OPTIONS: Options = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

/** The core's own commands and the options they take. Plugins add theirs (plugin-commands.ts); the core knows no plugin. */
const CORE_COMMANDS: Readonly<Record<string, Command>> = {
  start: startCommand,
  reload: reloadCommand,
  'check-config': checkConfigCommand,
  config: configCommand,
  queue: queueCommand,
  init: initCommand,
  plugin: pluginCommand,
  why: whyCommand,
  trace: traceCommand,
};
const CORE_OPTIONS: Options = {
  ...GLOBAL_OPTIONS,
  json: { type: 'boolean' },
  state: { type: 'string' },
  domain: { type: 'string' },
  sender: { type: 'string' },
  'older-than': { type: 'string' },
  all: { type: 'boolean' },
  hostname: { type: 'string' },
  dir: { type: 'string' },
  force: { type: 'boolean' },
  source: { type: 'string', multiple: true },
  listener: { type: 'string' },
  rcpt: { type: 'string' },
  'only-one': { type: 'boolean' },
  terse: { type: 'boolean' },
  mx: { type: 'string' },
  'queue-id': { type: 'string' },
  admin: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  after: { type: 'string' },
};
/** Names a plugin command cannot take: the core's commands, `sendmail` (parsed apart: it takes sendmail's flags) and `help`. */
const RESERVED = new Set([...Object.keys(CORE_COMMANDS), 'sendmail', 'help']);

const out = lineWriter(process.stdout);
const err = lineWriter(process.stderr, 'petrel: ');

async function main(argv: string[]): Promise<number> {
  const name = commandName(argv);
  // sendmail takes sendmail's flags (-t -i -oi -f ...), not petrel's.
  if (name === 'sendmail') return sendmail(argv);
  const core = name !== undefined && Object.hasOwn(CORE_COMMANDS, name) ? CORE_COMMANDS[name] : undefined;
  if (name === undefined || name === 'help' || core !== undefined) {
    const parsed = parse(argv, CORE_OPTIONS);
    if (typeof parsed === 'number') return parsed;
    const { values, positionals } = parsed;
    if (values.version) return printVersion();
    const configFile = configFileOf(values);
    if (values.help || name === 'help') {
      process.stdout.write(await helpText(configFile, RESERVED));
      return EXIT.ok;
    }
    if (core === undefined) return usageError('which command? (petrel --help lists them)', CORE_USAGE);
    return core({ configFile, args: positionals.slice(1), flags: values as CliContext['flags'], out, err, usage: usageError });
  }

  const loose = parseArgs({ args: argv, allowPositionals: true, strict: false, options: GLOBAL_OPTIONS });
  if (loose.values.version) return printVersion();
  const configFile = configFileOf(loose.values);
  const { commands, problems } = await discoverPluginCommands(configFile, RESERVED);
  const offered = commands.find((candidate) => candidate.command.name === name);
  if (offered === undefined) {
    const known = [...RESERVED, ...commands.map((candidate) => candidate.command.name)];
    const notes = problems.map((problem) => `\nnote: ${problem}`).join('');
    return usageError(`unknown command "${name}"${didYouMean(name, known)}`, `${CORE_USAGE}${notes}`);
  }
  const { command } = offered;
  const usage = `usage: petrel ${command.name} ${command.usage}`;
  const parsed = parse(argv, { ...GLOBAL_OPTIONS, ...command.options }, usage);
  if (typeof parsed === 'number') return parsed;
  if (parsed.values.help) {
    process.stdout.write(`${usage}\n${command.description} (from the ${offered.plugin} plugin)\n`);
    return EXIT.ok;
  }
  return command.run(commandContext(offered, parsed.positionals.slice(1), parsed.values, configFile));
}

/** The first word that is not an option or the value of -c: the command. */
function commandName(argv: readonly string[]): string | undefined {
  const at = commandIndex(argv);
  return at === undefined ? undefined : argv[at];
}

function commandIndex(argv: readonly string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return i + 1 < argv.length ? i + 1 : undefined;
    if (arg === '-c' || arg === '--config') i++;
    else if (!arg.startsWith('-')) return i;
  }
  return undefined;
}

/**
 * `petrel sendmail ...`, its own flags after it; petrel's `-c FILE` before it
 * names the config as sendmail's `-C FILE` does (`petrel -c site.yaml sendmail root`).
 */
async function sendmail(argv: readonly string[]): Promise<number> {
  const at = commandIndex(argv) as number;
  const before = argv.slice(0, at).filter((arg) => arg !== '--');
  let parsed;
  try {
    parsed = parseArgs({ args: before, strict: true, options: { config: GLOBAL_OPTIONS.config } });
  } catch {
    return usageError('only -c FILE may come before sendmail; its own flags go after it (petrel sendmail --help)', CORE_USAGE);
  }
  const config = parsed.values.config;
  return sendmailCommand([...(typeof config === 'string' ? ['-C', config] : []), ...argv.slice(at + 1)]);
}

/** The command line parsed strictly with `options`; an unknown or malformed option is a usage error (64). */
function parse(argv: string[], options: Options, usage = CORE_USAGE) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options });
  } catch (error) {
    if (String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS_')) return usageError((error as Error).message, usage);
    throw error;
  }
}

function configFileOf(values: Record<string, unknown>): string {
  return typeof values.config === 'string' ? values.config : (process.env.PETREL_CONFIG ?? 'mta.config.yaml');
}

function printVersion(): number {
  out(`petrel ${PETREL_VERSION} (Node.js ${process.version})`);
  return EXIT.ok;
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
