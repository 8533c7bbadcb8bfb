import type { RedisClient } from '../redis/redis-client.js';
import { gcraBudget, type Budget, type Rate } from './gcra.js';
import { StoreUnavailableError, type LimitStore, type SlotResult, type TakeOptions } from './limit-store.js';

/*
 * Every script reads the clock with TIME, so all nodes share Redis's clock
 * and a node whose clock drifts cannot hand out extra budget. Each touches
 * exactly one key (Redis Cluster safe). Numbers go back as strings because
 * Redis truncates Lua numbers to integers.
 */

/** GCRA take; mirrors gcraDecide() in gcra.ts. ARGV: windowMs, limit, cost, dryRun (1/0), mode (fit/debt). */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local window = tonumber(ARGV[1])
local interval = window / tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local base = math.max(tat, now)
local newTat = base + cost * interval
local allowed
if ARGV[5] == 'debt' then allowed = (base - now) < window else allowed = (newTat - now) <= window + 0.000001 end
if allowed and ARGV[4] ~= '1' and cost > 0 then
  redis.call('SET', KEYS[1], string.format('%.3f', newTat), 'PX', math.ceil(newTat - now) + 1000)
  tat = newTat
end
return { allowed and 1 or 0, string.format('%.3f', tat), string.format('%.3f', now) }
`;

/**
 * Concurrency slots: a sorted set of holders scored by lease expiry. A node
 * refreshes the leases it holds; if it dies, its slots expire on their own.
 * ARGV: holder, limit, leaseMs.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if count >= tonumber(ARGV[2]) then return { 0, count } end
  count = count + 1
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return { 1, count }
`;

/** Extends the leases of holders this node still has (and re-creates them after Redis lost its data). ARGV: leaseMs, holder... */
const REFRESH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`;

/** Live holders (leases not yet expired). */
const HOLDERS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`;

interface ScriptCommands {
  petrelRateTake(key: string, windowMs: number, limit: number, cost: number, dryRun: number, mode: string): Promise<[number, string, string]>;
  petrelSlotAcquire(key: string, holder: string, limit: number, leaseMs: number): Promise<[number, number]>;
  petrelSlotRefresh(key: string, leaseMs: number, ...holders: string[]): Promise<number>;
  petrelSlotHolders(key: string): Promise<number>;
}

/** After a call timed out, how long other calls fail at once instead of each waiting the timeout. */
const SILENT_BACKOFF_MS = 1000;

export interface RedisStoreOptions {
  /** A call that takes longer counts as Redis being unavailable. */
  readonly timeoutMs: number;
  /** How long a concurrency slot stays counted if the node holding it dies. */
  readonly slotLeaseMs: number;
  /** Told when refreshing leases failed (at debug level: the fail-mode warnings already say Redis is down). */
  readonly onRefreshError: (error: unknown) => void;
}

/**
 * Counters in Redis, shared by every Petrel node using the same Redis and
 * key prefix. All decisions are Lua scripts (atomic on the server), loaded
 * with ioredis defineCommand (EVALSHA, falling back to EVAL after a Redis
 * restart flushed the script cache).
 *
 * It never waits for Redis: a client that is not connected, or a call that
 * runs past `timeoutMs`, throws StoreUnavailableError at once, and the
 * rule's fail mode applies. ioredis reconnects by itself; the first call
 * after that simply works again.
 */
export class RedisStore implements LimitStore {
  readonly kind = 'redis' as const;
  readonly #scripts: ScriptCommands;
  /** The slots this node holds, by key, so their leases can be refreshed. */
  readonly #held = new Map<string, Set<string>>();
  #refresher: NodeJS.Timeout | undefined;
  /** Until then, calls fail at once: the last one timed out. */
  #silentUntil = 0;

  constructor(
    private readonly client: RedisClient,
    private readonly options: RedisStoreOptions,
  ) {
    // Names are namespaced: the client is shared with the core and other plugins.
    client.defineCommand('petrelRateTake', { numberOfKeys: 1, lua: TAKE });
    client.defineCommand('petrelSlotAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    client.defineCommand('petrelSlotRefresh', { numberOfKeys: 1, lua: REFRESH });
    client.defineCommand('petrelSlotHolders', { numberOfKeys: 1, lua: HOLDERS });
    this.#scripts = client as unknown as ScriptCommands;
  }

  async take(key: string, rate: Rate, cost: number, options: TakeOptions): Promise<Budget> {
    const [allowed, tat, now] = await this.#call(() =>
      this.#scripts.petrelRateTake(key, rate.windowMs, rate.limit, cost, options.dryRun ? 1 : 0, options.mode),
    );
    return gcraBudget(rate, Number(tat), Number(now), cost, options.mode, allowed === 1);
  }

  async acquire(key: string, holder: string, limit: number): Promise<SlotResult> {
    const [allowed, count] = await this.#call(() => this.#scripts.petrelSlotAcquire(key, holder, limit, this.options.slotLeaseMs));
    if (allowed === 1) {
      const holders = this.#held.get(key) ?? new Set<string>();
      holders.add(holder);
      this.#held.set(key, holders);
    }
    return { allowed: allowed === 1, count };
  }

  async release(key: string, holder: string): Promise<void> {
    const holders = this.#held.get(key);
    holders?.delete(holder);
    if (holders?.size === 0) this.#held.delete(key);
    await this.#call(() => this.client.zrem(key, holder));
  }

  holders(key: string): Promise<number> {
    return this.#call(() => this.#scripts.petrelSlotHolders(key));
  }

  async reset(key: string): Promise<boolean> {
    return (await this.#call(() => this.client.del(key))) > 0;
  }

  start(): void {
    this.#refresher = setInterval(() => void this.#refreshLeases(), Math.max(100, Math.floor(this.options.slotLeaseMs / 3)));
    this.#refresher.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#refresher);
    // Give back what this node holds, so a restart does not leave slots counted until they expire.
    const held = [...this.#held].flatMap(([key, holders]) => [...holders].map((holder) => ({ key, holder })));
    await Promise.allSettled(held.map(({ key, holder }) => this.release(key, holder)));
  }

  async #refreshLeases(): Promise<void> {
    for (const [key, holders] of this.#held) {
      if (holders.size === 0) continue;
      try {
        await this.#call(() => this.#scripts.petrelSlotRefresh(key, this.options.slotLeaseMs, ...holders));
      } catch (error) {
        this.options.onRefreshError(error);
        return;
      }
    }
  }

  async #call<T>(run: () => Promise<T>): Promise<T> {
    const client = this.client;
    // Not started by the core (the `petrel limits` command): connect on first use.
    if (client.status === 'wait') await this.#bounded(client.connect());
    if (client.status !== 'ready') throw new StoreUnavailableError(`redis is not connected (${client.status})`);
    // A Redis that stopped answering on an open connection (a network partition) would make
    // every call wait the whole timeout; after one timed out, others fail at once for a while.
    if (Date.now() < this.#silentUntil) throw new StoreUnavailableError(`redis did not answer within ${this.options.timeoutMs} ms`);
    return this.#bounded(run());
  }

  /** Any failure, or no answer within the timeout, is the store being unavailable. */
  async #bounded<T>(promise: Promise<T>): Promise<T> {
    const ms = this.options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const expiry = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#silentUntil = Date.now() + SILENT_BACKOFF_MS;
        reject(new StoreUnavailableError(`redis did not answer within ${ms} ms`));
      }, ms);
    });
    try {
      return await Promise.race([promise, expiry]);
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      throw new StoreUnavailableError(`redis: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
