import type { z } from 'zod';
import type { PluginCommand } from '../cli/plugin-command.js';
import type { HookRegistrar } from '../hooks/registry.js';

/** What a plugin says about itself; checked at boot. */
export interface PluginMeta {
  /** Unique among loaded plugins; used in logs, metrics and `dependsOn`. */
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  /** Plugins that must be loaded too (by meta.name), or boot fails naming the missing one. */
  readonly dependsOn?: readonly string[];
  /** Core services this plugin implements: 'queue' makes it the server's queue (TOKENS.Queue). */
  readonly provides?: readonly 'queue'[];
}

/**
 * A plugin instance. Lifecycle: constructed by the container (options,
 * logger and services injected) → register(hooks) → start() → … → close(),
 * closes in the reverse order of starts.
 */
export interface Plugin {
  /** Adds hook handlers. Runs once, before any start(); hooks are sealed afterwards. */
  register?(hooks: HookRegistrar): void;
  /** Opens resources (connections, timers, files). The server listens only after every start() resolved. */
  start?(): Promise<void> | void;
  /** Releases what start() opened. */
  close?(): Promise<void> | void;
}

/** The class a plugin module exports (as `default` or as `plugin`). */
export interface PluginClass<P extends Plugin = Plugin> {
  new (...args: never[]): P;
  readonly meta: PluginMeta;
  /** Schema of the plugin's `options:` block; the parsed value is injected as TOKENS.PluginOptions. */
  readonly options?: z.ZodType;
  /**
   * Injection tokens of the constructor parameters, in order, for code that
   * cannot use decorators (plain JavaScript, .ts files run by Node's type
   * stripping). TypeScript plugins compiled by tsc use `@inject(TOKEN)`.
   */
  readonly inject?: readonly symbol[];
  /** Commands the plugin adds to the `petrel` CLI (`petrel user ...`), shown by `petrel --help` under its name. */
  readonly commands?: readonly PluginCommand[];
}

/** The options type a plugin's schema produces. */
export type OptionsOf<S extends z.ZodType> = z.output<S>;
