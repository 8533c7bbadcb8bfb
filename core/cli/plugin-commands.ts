import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import type { PluginEntryConfig } from '../config/schema.js';
import type { PluginClass } from '../plugins/contract.js';
import { builtinPluginNames, entryLabel, importPluginClass } from '../plugins/module-resolver.js';
import type { PluginCommand } from './plugin-command.js';

/** A command and the plugin that offers it. */
export interface OfferedCommand {
  readonly command: PluginCommand;
  /** The plugin's meta.name. */
  readonly plugin: string;
  /** Whether the config enables the plugin (a command may still work without that, e.g. dkim keygen). */
  readonly enabled: boolean;
}

export interface PluginCommands {
  /** In config order, then the built-ins the config does not list. */
  readonly commands: readonly OfferedCommand[];
  /** What could not be looked at (an unreadable config, a plugin that does not import, a clash of names), for --help. */
  readonly problems: readonly string[];
}

const COMMAND_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * The commands plugins add to the CLI. Every built-in plugin's commands are
 * offered whether or not the config enables it (they come with Petrel, and
 * some are needed before the plugin is switched on: a DKIM key before
 * dkim-sign); other plugins' commands when the config names the plugin,
 * enabled or not, since the config is how the CLI finds them. A config that
 * cannot be read leaves the built-ins.
 *
 * `reserved` are the core's own command names, which a plugin cannot take.
 */
export async function discoverPluginCommands(configFile: string, reserved: ReadonlySet<string>): Promise<PluginCommands> {
  const problems: string[] = [];
  const candidates: { load: () => Promise<PluginClass>; label: string; enabled: boolean }[] = [];
  let baseDir = dirname(resolve(configFile));
  let entries: readonly PluginEntryConfig[] = [];
  if (existsSync(configFile)) {
    try {
      const loaded = await loadConfigFile(configFile);
      entries = loaded.config.plugins;
      baseDir = loaded.baseDir;
    } catch (error) {
      problems.push(`${configFile} could not be read, so only the built-in plugins' commands are known: ${(error as Error).message}`);
    }
  }
  for (const entry of entries) {
    candidates.push({ load: () => importPluginClass(entry, baseDir), label: entryLabel(entry), enabled: entry.enabled });
  }
  for (const name of builtinPluginNames()) {
    candidates.push({ load: () => importPluginClass({ name, enabled: true, options: {} }, baseDir), label: name, enabled: false });
  }

  const seen = new Set<PluginClass>();
  const taken = new Map<string, string>();
  const commands: OfferedCommand[] = [];
  for (const candidate of candidates) {
    let pluginClass: PluginClass;
    try {
      pluginClass = await candidate.load();
    } catch (error) {
      problems.push(`plugin ${candidate.label}: ${(error as Error).message}`);
      continue;
    }
    if (seen.has(pluginClass)) continue;
    seen.add(pluginClass);
    const plugin = pluginClass.meta.name;
    for (const command of pluginClass.commands ?? []) {
      const problem = commandProblem(command, reserved, taken);
      if (problem) {
        problems.push(`plugin ${plugin}: ${problem}`);
        continue;
      }
      taken.set(command.name, plugin);
      commands.push({ command, plugin, enabled: candidate.enabled });
    }
  }
  return { commands, problems };
}

/** Why a declared command cannot be offered, or undefined when it can. */
function commandProblem(command: PluginCommand, reserved: ReadonlySet<string>, taken: ReadonlyMap<string, string>): string | undefined {
  if (typeof command?.name !== 'string' || !COMMAND_NAME.test(command.name)) return `command name ${JSON.stringify(command?.name)} is not a lower-case word`;
  if (typeof command.run !== 'function') return `command ${command.name} has no run() function`;
  if (reserved.has(command.name)) return `command ${command.name} is one of Petrel's own and is ignored`;
  const owner = taken.get(command.name);
  if (owner !== undefined) return `command ${command.name} is offered by ${owner} already and is ignored`;
  return undefined;
}
