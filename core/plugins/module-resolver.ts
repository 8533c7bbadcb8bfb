import 'reflect-metadata';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PluginEntryConfig } from '../config/schema.js';
import { didYouMean } from '../util/nearest-name.js';
import type { PluginClass } from './contract.js';
import { assertOnePetrel, resolveSharedImportsHere } from './one-petrel.js';

/** Built-in plugins are compiled next to the core: dist/plugins/<name>/index.js. */
export const BUILTIN_PLUGIN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'plugins');

export function builtinPluginNames(): string[] {
  if (!existsSync(BUILTIN_PLUGIN_DIR)) return [];
  return readdirSync(BUILTIN_PLUGIN_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(BUILTIN_PLUGIN_DIR, entry.name, 'index.js')))
    .map((entry) => entry.name)
    .sort();
}

/** How a config entry names its plugin, for messages: `relay-access`, `./x.js`, `npm:petrel-foo`. */
export function entryLabel(entry: PluginEntryConfig): string {
  if (entry.name !== undefined) return entry.name;
  if (entry.path !== undefined) return entry.path;
  return `npm:${entry.package}`;
}

/**
 * Finds and imports the module of a plugin entry and returns its class.
 * Throws an Error whose message says what to fix; the loader turns it into a
 * config issue at the entry's line.
 */
export async function importPluginClass(entry: PluginEntryConfig, configDir: string): Promise<PluginClass> {
  const url = locateModule(entry, configDir);
  resolveSharedImportsHere();
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`cannot import ${entryLabel(entry)}: ${(error as Error).message}`, { cause: error });
  }
  assertOnePetrel(`plugin ${entryLabel(entry)}`);
  const candidate = module.default ?? module.plugin;
  if (!isPluginClass(candidate)) {
    throw new Error(
      `${entryLabel(entry)} does not export a plugin class (export default a class with static meta = { name, version })`,
    );
  }
  return candidate;
}

/**
 * Where a plugin's code lives, to name the plugin in reports of errors
 * nobody caught: its folder (a built-in's plugins/<name>/, an npm package's
 * root, the folder of a path plugin whose file is an index file), or the one
 * file of any other path plugin. A folder ends with a path separator.
 */
export function pluginSourceRoot(entry: PluginEntryConfig, configDir: string): string {
  const file = fileURLToPath(locateModule(entry, configDir));
  if (entry.package !== undefined) {
    const marker = `${sep}node_modules${sep}${entry.package.split('/').join(sep)}${sep}`;
    const at = file.lastIndexOf(marker);
    if (at >= 0) return file.slice(0, at + marker.length);
  }
  if (entry.path !== undefined && !/^index\.[cm]?[jt]s$/.test(basename(file))) return file;
  return `${dirname(file)}${sep}`;
}

function locateModule(entry: PluginEntryConfig, configDir: string): string {
  if (entry.name !== undefined) {
    const file = join(BUILTIN_PLUGIN_DIR, entry.name, 'index.js');
    if (!/^[a-z0-9-]+$/.test(entry.name) || !existsSync(file)) {
      const known = builtinPluginNames();
      throw new Error(
        `unknown built-in plugin "${entry.name}"${didYouMean(entry.name, known)} (built-ins: ${known.join(', ') || 'none'}; use path: for a file, package: for an npm package)`,
      );
    }
    return pathToFileURL(file).href;
  }
  if (entry.path !== undefined) {
    const file = resolve(configDir, entry.path);
    if (!existsSync(file)) throw new Error(`plugin file not found: ${file}`);
    return pathToFileURL(file).href;
  }
  const require = createRequire(join(configDir, 'noop.js'));
  try {
    return pathToFileURL(require.resolve(entry.package as string)).href;
  } catch {
    throw new Error(`npm package "${entry.package}" is not installed (npm install ${entry.package})`);
  }
}

function isPluginClass(value: unknown): value is PluginClass {
  if (typeof value !== 'function') return false;
  const meta = (value as { meta?: { name?: unknown; version?: unknown } }).meta;
  return typeof meta === 'object' && meta !== null && typeof meta.name === 'string' && typeof meta.version === 'string';
}
