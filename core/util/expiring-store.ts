import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';

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
  get(key: string): Promise<string | undefined>;
  /** Stores a value that disappears after ttlMs. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Where an option `store: auto | memory | redis` sends a plugin's state. */
export type StoreChoice = 'auto' | 'memory' | 'redis';

/**
 * The store a plugin asked for. `auto` is Redis when the config has a
 * `redis:` section, memory otherwise. Throws a message fit for the operator
 * when `redis` is asked for and none is configured.
 */
export function openExpiringStore(choice: StoreChoice, namespace: string, clock: Clock, redis: Redis | undefined): ExpiringStore {
  if (choice === 'redis' && redis === undefined) {
    throw new Error(`store: redis needs a redis: section (url) in the config, or use store: memory`);
  }
  if (choice !== 'memory' && redis !== undefined) return new RedisExpiringStore(redis, `${namespace}:`);
  return new MemoryExpiringStore(clock);
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

  async get(key: string): Promise<string | undefined> {
    return this.#live(key)?.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#put(key, value, this.clock.now() + ttlMs);
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

/** The shared store: one key per entry under the config's redis.keyPrefix and the plugin's namespace. */
export class RedisExpiringStore implements ExpiringStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async increment(key: string, ttlMs: number): Promise<number> {
    // One atomic step, so the window starts at the first increment and is never extended.
    const count = await this.redis.eval(INCREMENT_WITH_WINDOW, 1, this.prefix + key, Math.max(1, Math.ceil(ttlMs)));
    return Number(count);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}
