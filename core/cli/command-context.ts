import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { makePaths, type Paths } from '../paths.js';
import { Petrel } from '../petrel.js';
import { importPluginClass } from '../plugins/module-resolver.js';
import { parsePluginOptions } from '../plugins/plugin-options.js';
import type { CommandContext, CommandFlags } from './plugin-command.js';
import type { OfferedCommand } from './plugin-commands.js';
import { lineWriter } from './cli-output.js';
import { EXIT } from './exit-codes.js';

/**
 * The context a plugin command runs in. The config is read only when the
 * command asks for something from it, and at most once.
 */
export function commandContext(offered: OfferedCommand, args: readonly string[], flags: CommandFlags, configFile: string): CommandContext {
  const { command, plugin } = offered;
  let loading: Promise<LoadedConfig> | undefined;
  const config = () => (loading ??= loadConfigFile(configFile));
  const hasConfig = existsSync(configFile);

  return {
    args,
    flags,
    configFile,
    hasConfig,
    plugin,
    stdin: process.stdin,
    out: lineWriter(process.stdout),
    err: lineWriter(process.stderr, `petrel ${command.name}: `),
    usage: (problem) => usageError(problem, `usage: petrel ${command.name} ${command.usage}`),
    config,
    paths: async (): Promise<Paths> => {
      if (!hasConfig) return makePaths(dirname(resolve(configFile)), 'data');
      const loaded = await config();
      return makePaths(loaded.baseDir, loaded.config.server.dataDir);
    },
    pluginOptions: async <T>() => (await enabledEntryOptions(await config(), plugin)) as T | undefined,
    withPlugin: async <P, R>(use: (instance: P) => Promise<R>) => {
      const petrel = await Petrel.build({ config: await config(), logger: createLogger({ level: 'silent' }) });
      try {
        const loaded = petrel.plugins.plugins.find((candidate) => candidate.name === plugin);
        return loaded === undefined ? undefined : await use(loaded.instance as P);
      } finally {
        await petrel.stop();
      }
    },
  };
}

/** What was wrong with the command line, then the usage, on stderr; EX_USAGE (64). Shared by core and plugin commands. */
export function usageError(problem: string, usage: string): number {
  process.stderr.write(`petrel: ${problem}\n${usage.trimEnd()}\n`);
  return EXIT.usage;
}

/** The parsed options of the enabled config entry whose class is `plugin`; a bad option is a ConfigError at its line. */
async function enabledEntryOptions(loaded: LoadedConfig, plugin: string): Promise<unknown> {
  for (const [index, entry] of loaded.config.plugins.entries()) {
    if (!entry.enabled) continue;
    const pluginClass = await importPluginClass(entry, loaded.baseDir);
    if (pluginClass.meta.name !== plugin) continue;
    const parsed = parsePluginOptions(pluginClass, entry, index, loaded.locator);
    if (parsed.issues.length > 0) throw new ConfigError(parsed.issues);
    return parsed.options;
  }
  return undefined;
}
