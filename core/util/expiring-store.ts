import type { Clock } from '../clock.js';
import type { RedisClient } from '../redis/redis-client.js';

/**
 * Small shared state that expires by itself: AUTH failure counters,
 * lockouts, greylisting triplets. In memory on a single node; in Redis when
 * several Petrel nodes must agree (one brute-force counter, one greylist for
 * the whole cluster). Values are short strings; callers keep their own
 * timestamps inside values when they need exact ages, because Redis expires
 * keys by its own clock, not by the injected Clock.
 */
export interface ExpiringStore {
  /** Adds one to a counter; the counter's lifetime starts at its first increment. Returns the new count. */
  increment(key: string, ttlMs: number): Promise<number>;
  /** Takes one back from a counter (never below 0, its expiry unchanged; a missing counter stays missing). */
  decrement(key: string): Promise<void>;
  get(key: string): Promise<string | undefined>;
  /** Stores a value that disappears after ttlMs. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Stores a value that disappears after ttlMs, only if the key holds none; true when it was stored. One atomic step. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  delete(key: string): Promise<void>;
}

/** Where an option `store: auto | memory | redis` sends a plugin's state. */
export type StoreChoice = 'auto' | 'memory' | 'redis';

/**
 * The expiring stores of one Petrel process, one per namespace (a plugin's
 * name). Plugins get them here rather than making their own so that memory
 * stores live as long as the process, not as long as the plugin instance: a
 * reload that builds a plugin again (its options changed) hands the new
 * instance the same counters, and an AUTH lockout or a greylist survives
 * `petrel reload`. Redis stores keep their state in Redis anyway.
 */
export class ExpiringStores {
  readonly #memory = new Map<string, MemoryExpiringStore>();

  constructor(
    private readonly clock: Clock,
    private readonly redis: RedisClient | undefined,
    /**
     * Where "memory" state lives when it is not this process's to keep: a
     * worker of server.workers keeps it in the primary process, so all
     * workers count one AUTH lockout and one greylist (core/workers/).
     */
    private readonly sharedMemory?: (namespace: string) => ExpiringStore,
  ) {}

  /**
   * The store a plugin asked for. `auto` is Redis when the config has a
   * `redis:` section, memory otherwise. Throws a message fit for the operator
   * when `redis` is asked for and none is configured.
   */
  open(choice: StoreChoice, namespace: string): ExpiringStore {
    if (choice === 'redis' && this.redis === undefined) {
      throw new Error(`store: redis needs a redis: section (url) in the config, or use store: memory`);
    }
    if (choice !== 'memory' && this.redis !== undefined) return new RedisExpiringStore(this.redis, `${namespace}:`);
    if (this.sharedMemory) return this.sharedMemory(namespace);
    let store = this.#memory.get(namespace);
    if (!store) this.#memory.set(namespace, (store = new MemoryExpiringStore(this.clock)));
    return store;
  }
}

/** The single-node store. Bounded, so a flood of distinct keys cannot exhaust memory. */
export class MemoryExpiringStore implements ExpiringStore {
  readonly #entries = new Map<string, { value: string; expires: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries = 100_000,
  ) {}

  async increment(key: string, ttlMs: number): Promise<number> {
    const current = this.#live(key);
    const count = (current ? Number(current.value) : 0) + 1;
    this.#put(key, String(count), current ? current.expires : this.clock.now() + ttlMs);
    return count;
  }

  async decrement(key: string): Promise<void> {
    const current = this.#live(key);
    if (current) current.value = String(Math.max(0, Number(current.value) - 1));
  }

  async get(key: string): Promise<string | undefined> {
    return this.#live(key)?.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#put(key, value, this.clock.now() + ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return false;
    this.#put(key, value, this.clock.now() + ttlMs);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  #live(key: string): { value: string; expires: number } | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.expires <= this.clock.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #put(key: string, value: string, expires: number): void {
    // Re-inserting moves the key to the end, so the Map's order is least recently written first.
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) this.#evict();
    this.#entries.set(key, { value, expires });
  }

  #evict(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expires <= now) this.#entries.delete(key);
    }
    // Still full of live entries: drop the oldest tenth rather than one at a time.
    if (this.#entries.size >= this.maxEntries) {
      let drop = Math.ceil(this.maxEntries / 10);
      for (const key of this.#entries.keys()) {
        if (drop-- <= 0) break;
        this.#entries.delete(key);
      }
    }
  }
}

const INCREMENT_WITH_WINDOW = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`;

/** DECR keeps the key's expiry; a missing or zero counter is left alone (DECR would create -1 without one). */
const DECREMENT_TO_ZERO = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count and count > 0 then redis.call('DECR', KEYS[1]) end
return 0`;

/** The shared store: one key per entry under the config's redis.keyPrefix and the plugin's namespace. */
export class RedisExpiringStore implements ExpiringStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  async increment(key: string, ttlMs: number): Promise<number> {
    // One atomic step, so the window starts at the first increment and is never extended.
    const count = await this.redis.eval(INCREMENT_WITH_WINDOW, 1, this.prefix + key, Math.max(1, Math.ceil(ttlMs)));
    return Number(count);
  }

  async decrement(key: string): Promise<void> {
    await this.redis.eval(DECREMENT_TO_ZERO, 1, this.prefix + key);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK';
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}
