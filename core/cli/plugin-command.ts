import type { LoadedConfig } from '../config/load.js';
import type { Paths } from '../paths.js';

/** One option of a plugin command, as `node:util` parseArgs takes it (`--users-file FILE`, `--json`). */
export interface CommandOption {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}

/**
 * A command a plugin adds to the `petrel` CLI: `petrel <name> ...`. A plugin
 * class lists its commands in `static commands`; the CLI finds them in the
 * built-in plugins and in the plugins the config names, and `petrel --help`
 * shows each under the plugin it comes from.
 *
 *   static readonly commands: readonly PluginCommand[] = [{
 *     name: 'greylist',
 *     usage: 'show|forget ADDRESS',
 *     description: 'look at or forget greylisting triplets',
 *     options: { json: { type: 'boolean' } },
 *     run: async (context) => { ... return 0; },
 *   }];
 */
export interface PluginCommand {
  /** The word after `petrel`: lower case letters, digits and `-`. */
  readonly name: string;
  /** What follows the name, e.g. `add|passwd LOGIN [--password-stdin] | remove LOGIN | list`. */
  readonly usage: string;
  /** One line for `petrel --help`. */
  readonly description: string;
  /** Options beyond the global `-c/--config` and `-h/--help`. An option not listed is a usage error. */
  readonly options?: Readonly<Record<string, CommandOption>>;
  /** Runs the command; resolves to the process exit code. Throwing a ConfigError or PetrelError prints its message. */
  run(context: CommandContext): Promise<number>;
}

/** Parsed command-line options of a command: strings, booleans, lists for `multiple`. */
export type CommandFlags = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

/**
 * What a plugin command is given: its arguments, output, and the plugin's
 * services. Everything that reads the config does so on demand, so a
 * command that needs none (`petrel dkim keygen --out FILE`) works without a
 * config file.
 */
export interface CommandContext {
  /** The words after the command name (`add`, `alice@example.org`). */
  readonly args: readonly string[];
  readonly flags: CommandFlags;
  /** The config file named by -c, $PETREL_CONFIG or ./mta.config.yaml (it may not exist). */
  readonly configFile: string;
  /** Whether the config file exists. */
  readonly hasConfig: boolean;
  /** The meta.name of the plugin the command comes from. */
  readonly plugin: string;
  /** Standard input, for secrets piped in (`--password-stdin`) or asked for on a terminal. */
  readonly stdin: NodeJS.ReadStream;
  /** A line on standard output. */
  out(line: string): void;
  /** A line on standard error, prefixed `petrel <command>: `. */
  err(line: string): void;
  /**
   * Says what was wrong with the command line, then `usage: petrel <name>
   * <usage>`, on stderr, and returns EX_USAGE (64): `return context.usage('the LOGIN is missing')`.
   */
  usage(problem: string): number;
  /** The validated config; rejects with a ConfigError (printed with file and line) when it is missing or invalid. */
  config(): Promise<LoadedConfig>;
  /** Where things are: the config's paths, or `./data` beside the config file when there is none yet. */
  paths(): Promise<Paths>;
  /** This plugin's options from the config, parsed by its schema; undefined when the config does not enable it. */
  pluginOptions<T = unknown>(): Promise<T | undefined>;
  /**
   * Builds the configured server without starting it (no listener opens,
   * no plugin's start() runs), hands `use` this plugin's instance, with
   * every service it asked for injected (Redis, Config, Clock...), and shuts
   * it down again. Resolves to undefined when the config does not enable
   * the plugin.
   */
  withPlugin<P, R>(use: (plugin: P) => Promise<R>): Promise<R | undefined>;
}
