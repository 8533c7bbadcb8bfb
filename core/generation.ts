import type { DependencyContainer } from 'tsyringe';
import type { LoadedConfig } from './config/load.js';
import type { PetrelConfig } from './config/schema.js';
import { OutboundHooks } from './delivery/outbound-hooks.js';
import type { HookRegistry } from './hooks/registry.js';
import { HookRunner } from './hooks/runner.js';
import type { Logger } from './log/logger.js';
import type { PluginHost } from './plugins/plugin-host.js';
import type { SessionPipeline } from './smtp/session-pipeline.js';

/**
 * One configuration in force: its container, plugins and hooks. A reload
 * builds a new generation next to the running one; new sessions and new
 * delivery attempts start on the new one, those already running finish on the
 * old one, and the old one's plugins (those not carried over) are closed when
 * its last session and its last delivery attempt have ended.
 */
export class Generation implements SessionPipeline {
  readonly runner: HookRunner;
  readonly outbound: OutboundHooks;
  #sessions = 0;
  #deliveries = 0;
  #onDrained: (() => void) | undefined;

  constructor(
    readonly loaded: LoadedConfig,
    readonly container: DependencyContainer,
    readonly registry: HookRegistry,
    readonly plugins: PluginHost,
    logger: Logger,
  ) {
    this.runner = new HookRunner(registry);
    this.outbound = new OutboundHooks(registry, logger.child({ component: 'delivery' }), {
      enter: () => this.#deliveries++,
      leave: () => {
        this.#deliveries--;
        this.#drainedMaybe();
      },
    });
  }

  get config(): PetrelConfig {
    return this.loaded.config;
  }

  /** Sessions running on this generation now. */
  get sessions(): number {
    return this.#sessions;
  }

  /** Delivery attempts running on this generation's outbound hooks now. */
  get deliveries(): number {
    return this.#deliveries;
  }

  enter(): void {
    this.#sessions++;
  }

  leave(): void {
    this.#sessions--;
    this.#drainedMaybe();
  }

  /** No new sessions or deliveries will start here; `whenDrained` runs once the last running one has ended. */
  retire(whenDrained: () => void): void {
    this.#onDrained = () => {
      this.#onDrained = undefined;
      whenDrained();
    };
    this.#drainedMaybe();
  }

  #drainedMaybe(): void {
    if (this.#sessions === 0 && this.#deliveries === 0) this.#onDrained?.();
  }
}
