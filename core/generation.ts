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
 * builds a new generation next to the running one; new sessions start on the
 * new one, sessions already open finish on the old one, and the old one's
 * plugins (those not carried over) are closed when its last session ends.
 */
export class Generation implements SessionPipeline {
  readonly runner: HookRunner;
  readonly outbound: OutboundHooks;
  #sessions = 0;
  #onDrained: (() => void) | undefined;

  constructor(
    readonly loaded: LoadedConfig,
    readonly container: DependencyContainer,
    readonly registry: HookRegistry,
    readonly plugins: PluginHost,
    logger: Logger,
  ) {
    this.runner = new HookRunner(registry);
    this.outbound = new OutboundHooks(registry, logger.child({ component: 'delivery' }));
  }

  get config(): PetrelConfig {
    return this.loaded.config;
  }

  /** Sessions running on this generation now. */
  get sessions(): number {
    return this.#sessions;
  }

  enter(): void {
    this.#sessions++;
  }

  leave(): void {
    this.#sessions--;
    if (this.#sessions === 0) this.#onDrained?.();
  }

  /** No new sessions will start here; `whenDrained` runs once the last open one has ended. */
  retire(whenDrained: () => void): void {
    if (this.#sessions === 0) {
      whenDrained();
      return;
    }
    this.#onDrained = () => {
      this.#onDrained = undefined;
      whenDrained();
    };
  }
}
