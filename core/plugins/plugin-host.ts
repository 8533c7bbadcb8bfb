import { injectable, inject, type DependencyContainer } from 'tsyringe';
import { ConfigError, type ConfigIssue } from '../config/config-error.js';
import type { LoadedConfig } from '../config/load.js';
import type { PluginEntryConfig } from '../config/schema.js';
import { issueAt, type ConfigLocator } from '../config/yaml-source.js';
import { TOKENS } from '../di/tokens.js';
import { PetrelError } from '../errors.js';
import { DEFAULT_HOOK_TIMEOUTS, type HookName } from '../hooks/catalogue.js';
import { leaseBudgetIssues } from '../delivery/lease-budget.js';
import type { HookRegistry } from '../hooks/registry.js';
import type { Logger } from '../log/logger.js';
import type { Queue } from '../queue/contract.js';
import { describeDuration } from '../util/describe-duration.js';
import type { Plugin, PluginClass } from './contract.js';
import { entryLabel, importPluginClass, pluginSourceRoot } from './module-resolver.js';
import { parsePluginOptions } from './plugin-options.js';

/** A plugin that has been found and whose options are valid, not yet constructed. */
interface ResolvedPlugin {
  readonly index: number;
  readonly entry: PluginEntryConfig;
  readonly pluginClass: PluginClass;
  readonly options: unknown;
  /** Where its code lives (pluginSourceRoot). */
  readonly source: string;
}

/**
 * How long a plugin's start() may take unless its entry says otherwise
 * (`startTimeout`). Long enough for a queue to recover a large backlog from
 * disk; short enough that a start waiting on something that never answers
 * ends with a message instead of a server that never opens its ports.
 */
export const DEFAULT_START_TIMEOUT_MS = 60_000;

/**
 * The running plugins a reload starts from: the queue is always carried over;
 * other plugins only when `keep` is 'unchanged' (the rest of the config is the
 * same) and their own config entry did not change.
 */
export interface PreviousPlugins {
  readonly host: PluginHost;
  readonly keep: 'unchanged' | 'queue';
}

/** A constructed plugin with what the server reports about it. */
export interface LoadedPlugin {
  readonly name: string;
  readonly version: string;
  readonly instance: Plugin;
  readonly options: unknown;
  /** The config entry it was made from, to recognise it on reload. */
  readonly entryKey: string;
  /** Where its code lives, to name it when its code throws and nobody catches (plugin-blame.ts). */
  readonly source: string;
  /** How long its start() may take. */
  readonly startTimeoutMs: number;
}

/**
 * Loads the plugins a config lists and runs their lifecycle:
 * import → validate options → check dependsOn → construct (queue providers
 * first, so others can inject the queue) → register → seal → start, and
 * close in reverse order. Every problem found before construction is
 * reported at once, each at its config line.
 */
export class PluginHost {
  readonly plugins: LoadedPlugin[] = [];
  #started: LoadedPlugin[] = [];
  /** Carried over from the previous host on reload; not ours to start or close until takeOver(). */
  #adopted: LoadedPlugin[] = [];
  #queue: Queue | undefined;

  constructor(
    private readonly root: DependencyContainer,
    private readonly registry: HookRegistry,
    private readonly logger: Logger,
  ) {}

  get queue(): Queue {
    if (this.#queue === undefined) throw new PetrelError('PETREL_NO_QUEUE', 'no queue plugin is loaded');
    return this.#queue;
  }

  /**
   * Loads the plugins of `loaded`. With `previous` (a config reload), a plugin
   * whose config entry is unchanged keeps its instance, started and with its
   * state, and is handed over to this host; the others are constructed anew.
   * The queue is always carried over: it cannot change without a restart.
   */
  async load(loaded: LoadedConfig, previous?: PreviousPlugins): Promise<void> {
    const resolved = await this.#resolveAll(loaded);
    const providers = resolved.filter((p) => p.pluginClass.meta.provides?.includes('queue'));
    const others = resolved.filter((p) => !providers.includes(p));
    const constructed = new Map<ResolvedPlugin, LoadedPlugin>();
    for (const plugin of [...providers, ...others]) {
      const entryKey = JSON.stringify(plugin.entry);
      const isQueue = providers.includes(plugin);
      const mayKeep = previous !== undefined && (isQueue || previous.keep === 'unchanged');
      const kept = mayKeep ? previous.host.#running(entryKey, plugin.pluginClass) : undefined;
      if (!kept && previous && isQueue) {
        throw new ConfigError([issueAt(loaded.locator, ['plugins', plugin.index], 'the queue plugin and its options cannot change on reload; restart Petrel to change them')]);
      }
      const instance = kept ? kept.instance : this.#construct(plugin, loaded.locator);
      const loadedPlugin: LoadedPlugin = {
        name: plugin.pluginClass.meta.name,
        version: plugin.pluginClass.meta.version,
        instance,
        options: plugin.options,
        entryKey,
        source: plugin.source,
        startTimeoutMs: plugin.entry.startTimeout ?? DEFAULT_START_TIMEOUT_MS,
      };
      constructed.set(plugin, loadedPlugin);
      if (kept) this.#adopted.push(loadedPlugin);
      if (isQueue) {
        this.#queue = instance as unknown as Queue;
        this.root.registerInstance(TOKENS.Queue, instance);
      }
    }
    // Register in config order, so config order is the hook order.
    for (const plugin of resolved) {
      const loadedPlugin = constructed.get(plugin) as LoadedPlugin;
      this.plugins.push(loadedPlugin);
      const timeouts = loaded.config.hooks.timeouts;
      loadedPlugin.instance.register?.(
        this.registry.forPlugin(loadedPlugin.name, {
          priority: plugin.entry.priority,
          timeoutFor: (hook: HookName) =>
            plugin.entry.timeouts?.[hook] ?? plugin.entry.timeout ?? timeouts[hook] ?? DEFAULT_HOOK_TIMEOUTS[hook],
        }),
      );
    }
    this.registry.seal();
    const entries = resolved.map((p) => ({ name: p.pluginClass.meta.name, index: p.index, entry: p.entry }));
    const issues = leaseBudgetIssues(loaded, this.registry.handlers('deliver'), entries);
    if (issues.length > 0) throw new ConfigError(issues);
  }

  /**
   * Starts the plugins in config order (or only those `which` selects); ones
   * already running are skipped. Each gets its `startTimeoutMs`; the first
   * that fails or runs out of time stops the start with PETREL_PLUGIN_START.
   * Each start is logged (`plugin X started`, with how long it took), so a
   * slow start shows which plugin it was.
   */
  async start(which: (plugin: LoadedPlugin) => boolean = () => true): Promise<void> {
    for (const plugin of this.plugins.filter(which)) {
      if (this.#started.includes(plugin) || this.#adopted.includes(plugin)) continue;
      const began = performance.now();
      try {
        await startWithin(plugin);
      } catch (error) {
        throw new PetrelError('PETREL_PLUGIN_START', `plugin ${plugin.name} failed to start: ${(error as Error)?.message ?? String(error)}`, {
          cause: error,
        });
      }
      this.#started.push(plugin);
      const ms = Math.round(performance.now() - began);
      this.logger.info({ plugin: plugin.name, version: plugin.version, ms }, `plugin ${plugin.name} started`);
    }
  }

  /** Closes started plugins in reverse order; a failing close is logged and the rest still close. */
  async close(): Promise<void> {
    for (const plugin of this.#started.reverse()) {
      try {
        await plugin.instance.close?.();
      } catch (error) {
        this.logger.error({ plugin: plugin.name, err: error }, `plugin ${plugin.name} failed to close`);
      }
    }
    this.#started = [];
  }

  /** A running plugin made from this exact config entry, which a new host may carry over (reload). */
  #running(entryKey: string, pluginClass: PluginClass): LoadedPlugin | undefined {
    return this.#started.find((p) => p.entryKey === entryKey && p.instance.constructor === pluginClass);
  }

  /**
   * Completes a reload: the plugins this host carried over from `previous`
   * become this host's to close, and `previous` forgets them, so closing the
   * old host closes only what the new one did not keep.
   */
  takeOver(previous: PluginHost): void {
    const kept = new Set(this.#adopted.map((p) => p.instance));
    previous.#started = previous.#started.filter((p) => !kept.has(p.instance));
    this.#started.unshift(...this.#adopted);
    this.#adopted = [];
  }

  async #resolveAll(loaded: LoadedConfig): Promise<ResolvedPlugin[]> {
    const { config, locator } = loaded;
    const issues: ConfigIssue[] = [];
    const resolved: ResolvedPlugin[] = [];
    for (const [index, entry] of config.plugins.entries()) {
      if (!entry.enabled) continue;
      let pluginClass: PluginClass;
      try {
        pluginClass = await importPluginClass(entry, loaded.baseDir);
      } catch (error) {
        issues.push(issueAt(locator, ['plugins', index], (error as Error).message));
        continue;
      }
      const parsed = parsePluginOptions(pluginClass, entry, index, locator);
      issues.push(...parsed.issues);
      resolved.push({ index, entry, pluginClass, options: parsed.options, source: pluginSourceRoot(entry, loaded.baseDir) });
    }
    const names = new Map<string, number>();
    for (const plugin of resolved) {
      const name = plugin.pluginClass.meta.name;
      if (names.has(name)) {
        issues.push(issueAt(locator, ['plugins', plugin.index], `plugin "${name}" is listed twice (also at plugins[${names.get(name)}])`));
      }
      names.set(name, plugin.index);
    }
    for (const plugin of resolved) {
      for (const dependency of plugin.pluginClass.meta.dependsOn ?? []) {
        if (!names.has(dependency)) {
          issues.push(
            issueAt(
              locator,
              ['plugins', plugin.index],
              `plugin "${plugin.pluginClass.meta.name}" depends on "${dependency}", which is not enabled (add - name: ${dependency})`,
            ),
          );
        }
      }
    }
    const queues = resolved.filter((p) => p.pluginClass.meta.provides?.includes('queue'));
    if (queues.length === 0 && issues.length === 0) {
      issues.push(
        issueAt(locator, ['plugins'], 'no queue plugin is enabled: accepted mail needs somewhere durable to go (add - name: queue-journal)'),
      );
    } else if (queues.length > 1) {
      issues.push(
        issueAt(locator, ['plugins', queues[1].index], `only one queue plugin may be enabled (found ${queues.map((q) => q.pluginClass.meta.name).join(' and ')})`),
      );
    }
    if (issues.length > 0) throw new ConfigError(issues);
    return resolved;
  }

  #construct(plugin: ResolvedPlugin, locator: ConfigLocator): Plugin {
    const { pluginClass } = plugin;
    const name = pluginClass.meta.name;
    const child = this.root.createChildContainer();
    child.registerInstance(TOKENS.PluginOptions, plugin.options);
    child.registerInstance(TOKENS.Logger, this.logger.child({ plugin: name }));
    applyStaticInjections(pluginClass);
    try {
      return child.resolve(pluginClass as unknown as new () => Plugin);
    } catch (error) {
      const message = (error as Error).message;
      const redis = message.includes(String(TOKENS.Redis));
      const hint = redis
        ? `plugin ${name} needs Redis: add a redis: section (url) to the config`
        : message.includes('TypeInfo not known')
          ? unknownTypeHint(name, pluginClass)
          : `plugin ${name} could not be constructed: ${message}`;
      throw new ConfigError([issueAt(locator, ['plugins', plugin.index], hint)]);
    }
  }
}

/**
 * Runs a plugin's start() with its deadline. The timer keeps the process
 * alive on purpose: a start() that waits on a promise nothing will settle
 * would otherwise let Node exit 0 without a word.
 */
async function startWithin(plugin: LoadedPlugin): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`start() did not finish within ${describeDuration(plugin.startTimeoutMs)} (raise startTimeout in its config entry if it needs longer)`)),
      plugin.startTimeoutMs,
    );
  });
  try {
    await Promise.race([plugin.instance.start?.(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why the container does not know how to construct a plugin class. A class
 * whose parameters carry @inject metadata did use decorators, so either its
 * @injectable() is missing or it came from another copy of tsyringe than
 * Petrel's (the plugin imported tsyringe itself), whose registry Petrel's
 * container never reads.
 */
function unknownTypeHint(name: string, pluginClass: PluginClass): string {
  const decorated = Reflect.getOwnMetadata(TSYRINGE_INJECTION_TOKENS, pluginClass) !== undefined;
  return decorated
    ? `plugin ${name}: its constructor has @inject decorators, but Petrel's container does not know the class: ` +
        "mark it @injectable(), and import inject and injectable from 'petrel' (not from 'tsyringe': a second copy of tsyringe keeps its own registry)"
    : `plugin ${name}: its constructor parameters need @inject(TOKEN) decorators and @injectable(), or a static inject = [TOKENS...] list`;
}

/** Where tsyringe's @inject keeps the tokens of a class's constructor parameters (reflect-metadata, shared by every copy). */
const TSYRINGE_INJECTION_TOKENS = 'injectionTokens';

/** Turns a class's static `inject` list into the metadata tsyringe reads from decorators. */
function applyStaticInjections(pluginClass: PluginClass): void {
  if (!pluginClass.inject) return;
  pluginClass.inject.forEach((token, position) => inject(token)(pluginClass, undefined, position));
  injectable()(pluginClass as unknown as new (...args: unknown[]) => unknown);
}

export { entryLabel };
