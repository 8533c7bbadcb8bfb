import type { HookArgs, HookMap, OutboundHookName } from '../hooks/catalogue.js';
import type { HookRegistry, RegisteredHandler } from '../hooks/registry.js';
import { withTimeout } from '../hooks/runner.js';
import type { Logger } from '../log/logger.js';
import type { QueuedRecipient } from '../queue/contract.js';
import type {
  BouncedEvent,
  DeferredEvent,
  DeliveredEvent,
  Delivery,
  OutboundMessage,
  OutgoingContent,
  RecipientResult,
  Route,
} from './outbound.js';

/** A handler of an outbound hook threw, timed out or answered nonsense; names the plugin. */
export class OutboundHookError extends Error {
  constructor(
    readonly plugin: string,
    readonly hook: OutboundHookName,
    cause: unknown,
  ) {
    super(`plugin ${plugin} failed in ${hook} hook: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'OutboundHookError';
  }
}

/** Told when a delivery attempt starts and ends on these hooks (the generation that owns them counts it). */
export interface HookUsers {
  enter(): void;
  leave(): void;
}

/**
 * Runs the outbound hooks for the scheduler. Each hook has its own answer
 * type (see core/delivery/outbound.ts), so this is separate from the inbound
 * HookRunner, but the rules are the same: config order and priority,
 * per-plugin timeouts, and a failing handler is named in the log.
 */
export class OutboundHooks {
  constructor(
    private readonly registry: HookRegistry,
    private readonly log: Logger,
    private readonly users?: HookUsers,
  ) {}

  /**
   * Marks a delivery attempt running on these hooks until the returned
   * function is called (once; later calls do nothing): the plugins behind
   * them must stay open meanwhile, even if a reload replaced them.
   */
  hold(): () => void {
    this.users?.enter();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.users?.leave();
    };
  }

  /** True when some plugin can deliver mail; without one the scheduler does not run. */
  get hasDeliveryTarget(): boolean {
    return this.registry.has('deliver');
  }

  /** The first Route a handler gives; when none does, the first target, keyed by the recipient's domain. */
  async route(message: OutboundMessage, recipient: QueuedRecipient): Promise<Route> {
    for (const entry of this.registry.handlers('route')) {
      const route = await this.#call(entry, [message, recipient]);
      if (route === undefined) continue;
      if (typeof route !== 'object' || route === null || typeof route.destination !== 'string' || route.destination === '') {
        throw new OutboundHookError(entry.plugin, 'route', new TypeError('returned something that is not a Route ({ target?, destination })'));
      }
      return route;
    }
    return { destination: domainOf(recipient.address) };
  }

  /** Runs every transform handler in order; the first failure stops the delivery of this group. */
  async transform(delivery: Delivery, content: OutgoingContent): Promise<void> {
    for (const entry of this.registry.handlers('transform')) await this.#call(entry, [delivery, content]);
  }

  get hasTransforms(): boolean {
    return this.registry.has('transform');
  }

  /** The deliver handler for a route: the one of the plugin the route names, else the first one. */
  deliveryTarget(route: Route): RegisteredHandler<'deliver'> | undefined {
    const handlers = this.registry.handlers('deliver');
    return route.target === undefined ? handlers[0] : handlers.find((entry) => entry.plugin === route.target);
  }

  /** Runs a target's deliver handler; gives up as soon as `delivery.signal` fires (shutdown), whatever the handler does. */
  async deliver(entry: RegisteredHandler<'deliver'>, delivery: Delivery, onTimeout: () => void): Promise<readonly RecipientResult[]> {
    const results = await Promise.race([this.#call(entry, [delivery], onTimeout), aborted(delivery.signal)]);
    if (!Array.isArray(results)) {
      throw new OutboundHookError(entry.plugin, 'deliver', new TypeError('returned something that is not an array of recipient results'));
    }
    return results;
  }

  /** Notification: every handler runs; failures are logged and ignored. */
  async delivered(event: DeliveredEvent): Promise<void> {
    for (const entry of this.registry.handlers('delivered')) await this.#notify(entry, [event]);
  }

  /** The retry time a handler chose, or undefined to keep the schedule's. */
  async deferred(event: DeferredEvent): Promise<number | undefined> {
    let chosen: number | undefined;
    for (const entry of this.registry.handlers('deferred')) {
      const verdict = await this.#notify(entry, [event]);
      if (chosen === undefined && verdict && Number.isFinite(verdict.nextAttemptAt)) chosen = verdict.nextAttemptAt;
    }
    return chosen;
  }

  /** True when some handler asked to send no DSN. */
  async bounced(event: BouncedEvent): Promise<boolean> {
    let suppress = false;
    for (const entry of this.registry.handlers('bounced')) {
      const verdict = await this.#notify(entry, [event]);
      if (verdict?.suppressDsn === true) suppress = true;
    }
    return suppress;
  }

  async #notify<H extends OutboundHookName>(entry: RegisteredHandler<H>, args: HookArgs<H>) {
    try {
      return await this.#call(entry, args);
    } catch (error) {
      this.log.error({ plugin: entry.plugin, hook: entry.hook, err: error, code: 'PETREL_HOOK_FAILED' }, (error as Error).message);
      return undefined;
    }
  }

  async #call<H extends OutboundHookName>(entry: RegisteredHandler<H>, args: HookArgs<H>, onTimeout?: () => void) {
    type Answer = Awaited<ReturnType<HookMap[H]>>;
    try {
      return await this.registry.call(entry, () => {
        const outcome = (entry.handler as unknown as (...a: HookArgs<H>) => Answer | Promise<Answer>)(...args);
        return withTimeout(Promise.resolve(outcome), entry.timeoutMs);
      });
    } catch (error) {
      if ((error as Error)?.name === 'HandlerTimeout') onTimeout?.();
      throw error instanceof OutboundHookError ? error : new OutboundHookError(entry.plugin, entry.hook, error);
    }
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}
