import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { spellWait, spellWindow } from '../plugins/rate-limit/answers.js';
import { gcraBudget, gcraDecide, type Rate } from '../core/rate/gcra.js';
import { StoreUnavailableError, type LimitStore } from '../core/rate/limit-store.js';
import { MemoryStore } from '../core/rate/memory-store.js';
import { RedisStore } from '../core/rate/redis-store.js';
import { keyValue } from '../plugins/rate-limit/rule-keys.js';
import { testRedis } from './fixtures/redis.js';
import { DedicatedRedis } from './harness/dedicated-redis.js';

/** The two stores behind one interface, the GCRA arithmetic, and how key values are normalised. */

const PER_MINUTE: Rate = { limit: 10, windowMs: 60_000 };
const clients: Redis[] = [];
let redis: Awaited<ReturnType<typeof testRedis>>;

before(async () => {
  redis = await testRedis();
});
after(async () => {
  for (const client of clients) client.disconnect();
  await redis.cleanup();
});

/** A client with the test's key prefix, as TOKENS.Redis would be; connected unless `url` is another server. */
async function redisClient(url = redis.url, options: Record<string, unknown> = {}): Promise<Redis> {
  const client = new Redis(url, { keyPrefix: redis.prefix, lazyConnect: true, ...options });
  client.on('error', () => undefined);
  clients.push(client);
  if (url === redis.url) await client.connect();
  return client;
}

function redisStore(client: Redis, slotLeaseMs = 60_000): RedisStore {
  return new RedisStore(client, { timeoutMs: 1000, slotLeaseMs, onRefreshError: () => undefined });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('GCRA arithmetic', () => {
  it('fit: 10 a minute lets 10 through at once and refuses the 11th until one has dripped out (6 s)', () => {
    let tat = 0;
    const now = 1_000_000;
    for (let i = 0; i < 10; i++) {
      const decision = gcraDecide(PER_MINUTE, tat, now, 1, 'fit');
      assert.equal(decision.allowed, true, `request ${i + 1}`);
      tat = decision.newTat;
    }
    const eleventh = gcraDecide(PER_MINUTE, tat, now, 1, 'fit');
    assert.equal(eleventh.allowed, false);
    const budget = gcraBudget(PER_MINUTE, tat, now, 1, 'fit', false);
    assert.deepEqual(budget, { allowed: false, used: 10, remaining: 0, retryAfterMs: 6000, resetAfterMs: 60_000 });
    assert.equal(gcraDecide(PER_MINUTE, tat, now + 6000, 1, 'fit').allowed, true);
  });

  it('fit: a cost larger than what is left is refused even though something is left', () => {
    const tat = 1_000_000 + 8 * 6000; // 8 of 10 used
    assert.equal(gcraDecide(PER_MINUTE, tat, 1_000_000, 3, 'fit').allowed, false);
    assert.equal(gcraDecide(PER_MINUTE, tat, 1_000_000, 2, 'fit').allowed, true);
  });

  it('debt: allowed while anything is left and charged in full; then refused until the overdraft has dripped out', () => {
    const bytes: Rate = { limit: 1000, windowMs: 1000 }; // 1 ms per byte
    const now = 5_000;
    const first = gcraDecide(bytes, now, now, 900, 'debt');
    assert.equal(first.allowed, true);
    const second = gcraDecide(bytes, first.newTat, now, 900, 'debt');
    assert.equal(second.allowed, true, '100 bytes were left, so the message passes');
    assert.equal(second.newTat - now, 1800, 'and is charged in full');
    assert.equal(gcraDecide(bytes, second.newTat, now, 1, 'debt').allowed, false);
    const budget = gcraBudget(bytes, second.newTat, now, 1, 'debt', false);
    assert.equal(budget.used, 1800);
    assert.equal(budget.remaining, 0);
    assert.equal(budget.retryAfterMs, 801);
    assert.equal(gcraDecide(bytes, second.newTat, now + 801, 1, 'debt').allowed, true);
  });
});

describe('reply wording', () => {
  it('windows read as configured; waits are rounded up and do not jump units at the boundary', () => {
    assert.deepEqual([60_000, 900_000, 3_600_000, 90_000, 86_400_000, 500].map(spellWindow), ['minute', '15 minutes', 'hour', '90 seconds', 'day', '500 ms']);
    assert.deepEqual(
      [1, 1000, 30_000, 119_000, 120_000, 450_000, 3_599_999, 3_600_000, 7_200_001, 86_400_000].map(spellWait),
      ['1 second', '1 second', '30 seconds', '119 seconds', '2 minutes', '8 minutes', '60 minutes', '60 minutes', '3 hours', '24 hours'],
    );
  });
});

describe('key values', () => {
  const prefixes = { ipv4Prefix: 24, ipv6Prefix: 64 };
  it('case folded, domains as A-labels and taken from addresses, networks aggregated; values that do not fit a kind are undefined', () => {
    assert.equal(keyValue('sender', 'Alice@Example.ORG', prefixes), 'alice@example.org');
    assert.equal(keyValue('sender', 'alice@Bücher.example', prefixes), 'alice@xn--bcher-kva.example');
    assert.equal(keyValue('sender', '', prefixes), undefined, 'the null sender has no sender key');
    assert.equal(keyValue('recipient', 'postmaster', prefixes), undefined);
    assert.equal(keyValue('sender-domain', 'alice@Example.ORG', prefixes), 'example.org');
    assert.equal(keyValue('recipient-domain', 'Bücher.example', prefixes), 'xn--bcher-kva.example');
    assert.equal(keyValue('recipient-domain', '192.0.2.1', prefixes), undefined);
    assert.equal(keyValue('ip', '::ffff:192.0.2.1', prefixes), '192.0.2.1');
    assert.equal(keyValue('ip', 'example.org', prefixes), undefined);
    assert.equal(keyValue('network', '192.0.2.77', prefixes), '192.0.2.0/24');
    assert.equal(keyValue('network', '::ffff:192.0.2.77', prefixes), '192.0.2.0/24');
    assert.equal(keyValue('network', '192.0.2.1/24', prefixes), '192.0.2.0/24');
    assert.equal(keyValue('network', '2001:DB8:1:2:3:4:5:6', prefixes), '2001:db8:1:2::/64');
    assert.equal(keyValue('network', '198.51.100.200', { ipv4Prefix: 25, ipv6Prefix: 64 }), '198.51.100.128/25');
    assert.equal(keyValue('network', 'example.org', prefixes), undefined);
    assert.equal(keyValue('user', 'Bob', prefixes), 'bob');
    assert.equal(keyValue('helo', 'MX.Example.org', prefixes), 'mx.example.org');
  });
});

const stores: [string, () => Promise<LimitStore>][] = [
  ['memory', async () => new MemoryStore({ now: () => Date.now() })],
  ['redis', async () => redisStore(await redisClient())],
];

for (const [name, makeStore] of stores) {
  describe(`${name} store`, () => {
    it('take: fit mode, dry runs change nothing, keys are independent', async () => {
      const store = await makeStore();
      const key = `take:${name}:${Math.random()}`;
      const peek = await store.take(key, PER_MINUTE, 1, { mode: 'fit', dryRun: true });
      assert.equal(peek.allowed, true);
      assert.equal(peek.used, 0);
      for (let i = 0; i < 10; i++) assert.equal((await store.take(key, PER_MINUTE, 1, { mode: 'fit', dryRun: false })).allowed, true);
      const refused = await store.take(key, PER_MINUTE, 1, { mode: 'fit', dryRun: false });
      assert.equal(refused.allowed, false);
      assert.equal(refused.used, 10);
      assert.ok(refused.retryAfterMs > 5000 && refused.retryAfterMs <= 6000, `retry after ${refused.retryAfterMs}`);
      assert.equal((await store.take(`${key}:other`, PER_MINUTE, 1, { mode: 'fit', dryRun: false })).allowed, true);
      assert.equal(await store.reset(key), true);
      assert.equal(await store.reset(key), false);
      assert.equal((await store.take(key, PER_MINUTE, 10, { mode: 'fit', dryRun: false })).allowed, true, 'reset frees the whole budget');
    });

    it('take: the budget refills as time passes', async () => {
      const store = await makeStore();
      const key = `refill:${name}:${Math.random()}`;
      const fast: Rate = { limit: 2, windowMs: 400 };
      await store.take(key, fast, 2, { mode: 'fit', dryRun: false });
      assert.equal((await store.take(key, fast, 1, { mode: 'fit', dryRun: false })).allowed, false);
      await sleep(250);
      assert.equal((await store.take(key, fast, 1, { mode: 'fit', dryRun: false })).allowed, true, 'one unit drips out every 200 ms');
    });

    it('slots: acquire up to the limit, holding twice counts once, release gives back', async () => {
      const store = await makeStore();
      const key = `slots:${name}:${Math.random()}`;
      assert.deepEqual(await store.acquire(key, 'a', 2), { allowed: true, count: 1 });
      assert.deepEqual(await store.acquire(key, 'a', 2), { allowed: true, count: 1 });
      assert.deepEqual(await store.acquire(key, 'b', 2), { allowed: true, count: 2 });
      assert.deepEqual(await store.acquire(key, 'c', 2), { allowed: false, count: 2 });
      assert.equal(await store.holders(key), 2);
      await store.release(key, 'a');
      await store.release(key, 'never-held');
      assert.equal(await store.holders(key), 1);
      assert.deepEqual(await store.acquire(key, 'c', 2), { allowed: true, count: 2 });
    });
  });
}

describe('redis store specifics', () => {
  it('a dead node\'s slots expire after the lease; a live node keeps its slots by refreshing them', async () => {
    const client = await redisClient();
    const dead = redisStore(client, 600);
    const live = redisStore(client, 600);
    live.start();
    try {
      await dead.acquire('lease:dead', 'gone', 1);
      await live.acquire('lease:live', 'here', 1);
      await sleep(1500);
      assert.equal(await dead.holders('lease:dead'), 0, 'not refreshed: expired');
      assert.deepEqual(await dead.acquire('lease:dead', 'next', 1), { allowed: true, count: 1 });
      assert.equal(await live.holders('lease:live'), 1, 'refreshed every 200 ms: still held');
    } finally {
      await live.close();
    }
    assert.equal(await dead.holders('lease:live'), 0, 'close() gives back what the node held');
  });

  it('a Redis that does not answer makes calls fail at once with StoreUnavailableError', async () => {
    const client = await redisClient('redis://127.0.0.1:1', { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    const store = redisStore(client);
    await assert.rejects(store.take('k', PER_MINUTE, 1, { mode: 'fit', dryRun: false }), StoreUnavailableError);
    await assert.rejects(store.acquire('k', 'h', 1), StoreUnavailableError);
  });

  it('a Redis that hangs with the connection open: calls give up after the timeout, and work again when it answers', async () => {
    const dedicated = await DedicatedRedis.start();
    try {
      const client = await redisClient(dedicated.url);
      await client.connect();
      const store = new RedisStore(client, { timeoutMs: 200, slotLeaseMs: 60_000, onRefreshError: () => undefined });
      assert.equal((await store.take('hang', PER_MINUTE, 1, { mode: 'fit', dryRun: false })).allowed, true);
      dedicated.pause();
      await assert.rejects(store.take('hang', PER_MINUTE, 1, { mode: 'fit', dryRun: false }), /redis did not answer within 200 ms/);
      await assert.rejects(store.holders('hang-slots'), StoreUnavailableError, 'right after a timeout, calls fail without waiting again');
      dedicated.resume();
      await sleep(1100);
      const budget = await store.take('hang', PER_MINUTE, 1, { mode: 'fit', dryRun: false });
      assert.equal(budget.allowed, true);
      assert.ok(budget.used >= 2, `the first take and the one sent while Redis hung may both have counted; used ${budget.used}`);
    } finally {
      dedicated.resume();
      await dedicated.stop();
    }
  });

  it('all nodes use Redis\'s clock: keys carry the prefix and expire when the budget is full again', async () => {
    const client = await redisClient();
    const store = redisStore(client);
    await store.take('expiry', PER_MINUTE, 5, { mode: 'fit', dryRun: false });
    const ttl = await client.pttl('expiry');
    assert.ok(ttl > 30_000 && ttl <= 31_000, `5 of 10 per minute are free again in 30 s (+1 s slack), key ttl ${ttl}`);
  });
});
