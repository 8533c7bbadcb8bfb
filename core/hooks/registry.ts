import { PetrelError } from '../errors.js';
import type { HookHandler, HookName } from './catalogue.js';

export interface HandlerOptions {
  /** Higher runs earlier; ties keep config order. A priority on the plugin's config entry is added to this. */
  readonly priority?: number;
}

/** What a plugin's `register()` gets: adds handlers on behalf of that plugin. */
export interface HookRegistrar {
  on<H extends HookName>(hook: H, handler: HookHandler<H>, options?: HandlerOptions): void;
}

export interface RegisteredHandler<H extends HookName = HookName> {
  readonly plugin: string;
  readonly hook: H;
  readonly handler: HookHandler<H>;
  readonly priority: number;
  readonly timeoutMs: number;
  /** Registration order, the tie-breaker after priority. */
  readonly sequence: number;
}

export interface PluginHookSettings {
  /**
   * From the config entry; undefined when the operator did not set one. An offset added to
   * each handler's own priority: a plugin whose handlers rely on their order (auth-file's
   * guards around the other auth plugins) keeps it when the operator moves the plugin.
   */
  readonly priority: number | undefined;
  /** The handler timeout for each hook, already merged from defaults and config. */
  readonly timeoutFor: (hook: HookName) => number;
}

/**
 * One list of handlers per hook name (as in fastify's lib/hooks.js). Filled
 * while plugins register, then sealed: after boot nothing can be added, so
 * the pipeline a session runs is the one that was checked at start.
 */
/** Told about every handler call (metrics): how long it took and whether it failed. */
export type HandlerObserver = (hook: HookName, plugin: string, seconds: number, failed: boolean) => void;

export class HookRegistry {
  readonly #handlers = new Map<HookName, RegisteredHandler[]>();
  #sealed = false;
  #sequence = 0;
  #observer: HandlerObserver | undefined;

  constructor(observer?: HandlerObserver) {
    this.#observer = observer;
  }

  /**
   * Calls a handler and reports the call to the observer. Both runners (the
   * inbound HookRunner and the outbound hooks) call handlers through this, so
   * per-plugin latency and failures are measured in one place.
   */
  async call<T>(entry: RegisteredHandler, invoke: () => Promise<T>): Promise<T> {
    const observer = this.#observer;
    if (!observer) return invoke();
    const started = performance.now();
    try {
      const result = await invoke();
      observer(entry.hook, entry.plugin, (performance.now() - started) / 1000, false);
      return result;
    } catch (error) {
      observer(entry.hook, entry.plugin, (performance.now() - started) / 1000, true);
      throw error;
    }
  }

  forPlugin(plugin: string, settings: PluginHookSettings): HookRegistrar {
    return {
      on: (hook, handler, options) => {
        if (this.#sealed) {
          throw new PetrelError('PETREL_HOOKS_SEALED', `plugin ${plugin} tried to add a ${hook} handler after start; register hooks in register()`);
        }
        if (typeof handler !== 'function') {
          throw new PetrelError('PETREL_HOOK_HANDLER', `plugin ${plugin}: the ${hook} handler must be a function`);
        }
        const list = this.#handlers.get(hook) ?? [];
        list.push({
          plugin,
          hook,
          handler: handler as HookHandler<HookName>,
          priority: (options?.priority ?? 0) + (settings.priority ?? 0),
          timeoutMs: settings.timeoutFor(hook),
          sequence: this.#sequence++,
        });
        list.sort((a, b) => b.priority - a.priority || a.sequence - b.sequence);
        this.#handlers.set(hook, list);
      },
    };
  }

  seal(): void {
    this.#sealed = true;
  }

  get sealed(): boolean {
    return this.#sealed;
  }

  handlers<H extends HookName>(hook: H): readonly RegisteredHandler<H>[] {
    return (this.#handlers.get(hook) ?? []) as unknown as RegisteredHandler<H>[];
  }

  has(hook: HookName): boolean {
    return (this.#handlers.get(hook)?.length ?? 0) > 0;
  }
}
