import type { Clock } from '../clock.js';
import type { DeliveryConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { LimitStore } from '../rate/limit-store.js';
import { MemoryStore } from '../rate/memory-store.js';
import { RedisStore } from '../rate/redis-store.js';
import type { RedisClient } from '../redis/redis-client.js';
import { DestinationLine, type Admission, type LineSnapshot } from './destination-line.js';
import { DestinationRates } from './destination-rates.js';
import type { Route } from './outbound.js';
import { ShapingRules } from './shaping-rules.js';
import { ThrottleReplies } from './throttle-replies.js';

/** A Redis that does not answer a rate question this fast counts as down (and mail goes out unthrottled). */
const REDIS_TIMEOUT_MS = 1_000;
/** How often lines with nothing going on are dropped, so memory follows the destinations in use. */
const SWEEP_INTERVAL_MS = 60_000;
/** A destination still backed off but without any mail this long starts afresh next time. */
const FORGET_AFTER_MS = 3_600_000;

export interface ShaperDeps {
  readonly config: DeliveryConfig;
  readonly clock: Clock;
  readonly log: Logger;
  /** Needed for `delivery.shaping.store: redis` (config validation makes sure it is there). */
  readonly redis?: RedisClient;
}

export interface AdmissionRequest {
  /** The delivery plugin (`meta.name`) that will send the group. */
  readonly target: string;
  readonly route: Route;
  /** The latest start the message's lease can cover (its deadline minus the deliver timeout). */
  readonly mustStartBy: number;
}

/**
 * Outbound shaping (`delivery.shaping`): per destination, how many
 * deliveries run at once, how many messages go out a minute or an hour, and
 * how much slower to go when the destination says "slow down". One line
 * (core/delivery/destination-line.ts) per target and destination — or MX
 * host, when the route names one — and matched rule, for the whole node.
 *
 * Connections and back-off are per node; rates are per node with the memory
 * store and shared by all nodes with the Redis store (the GCRA stores of
 * core/rate/, as the rate-limit plugin uses them).
 */
export class OutboundShaper {
  readonly #lines = new Map<string, DestinationLine>();
  readonly #rules: ShapingRules;
  readonly #replies: ThrottleReplies;
  readonly #store: LimitStore;
  readonly #rates: DestinationRates;
  readonly #deps: ShaperDeps;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: ShaperDeps) {
    const shaping = deps.config.shaping;
    this.#deps = deps;
    this.#rules = new ShapingRules(shaping, deps.config.concurrency.perDestination);
    this.#replies = new ThrottleReplies(shaping.throttleReplies);
    this.#store = makeStore(deps);
    this.#rates = new DestinationRates(this.#store, shaping.keyPrefix, deps.clock, deps.log);
  }

  start(): void {
    this.#store.start();
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  /** Lets every waiting group go (their messages are due again at once) and closes the store. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const line of this.#lines.values()) line.close();
    this.#lines.clear();
    await this.#store.close();
  }

  /**
   * Asks to deliver one group. Resolves `start` with a ticket once the
   * destination has room — at once, or after waiting in memory at most
   * `delivery.shaping.maxWait` — or `later` with the time the message should
   * be due again when its turn is further off than that.
   */
  async admit(request: AdmissionRequest): Promise<Admission> {
    if (this.#closed) return { kind: 'later', at: this.#deps.clock.now() };
    const { route, target } = request;
    const limits = this.#rules.limitsFor(route);
    const destination = (route.host ?? route.destination).toLowerCase();
    const key = `${target}:${limits.rule}:${destination}`;
    let line = this.#lines.get(key);
    if (!line) {
      line = new DestinationLine({ key, destination, limits, rates: this.#rates, replies: this.#replies, clock: this.#deps.clock, log: this.#deps.log });
      this.#lines.set(key, line);
    }
    const startBy = Math.min(this.#deps.clock.now() + this.#deps.config.shaping.maxWait, request.mustStartBy);
    return line.admit(startBy);
  }

  /** Destinations with deliveries running or waiting, or still backed off. */
  snapshot(): LineSnapshot[] {
    return [...this.#lines.values()].map((line) => line.snapshot());
  }

  #sweep(): void {
    const now = this.#deps.clock.now();
    for (const [key, line] of this.#lines) if (line.idle(now, FORGET_AFTER_MS)) this.#lines.delete(key);
  }
}

function makeStore(deps: ShaperDeps): LimitStore {
  const shaping = deps.config.shaping;
  if (shaping.store === 'memory') return new MemoryStore(deps.clock);
  if (!deps.redis) throw new Error('delivery.shaping.store is redis, but the config has no redis: section');
  return new RedisStore(deps.redis, {
    timeoutMs: REDIS_TIMEOUT_MS,
    // Shaping uses rates only, never the store's concurrency slots.
    slotLeaseMs: 60_000,
    onRefreshError: () => undefined,
  });
}
