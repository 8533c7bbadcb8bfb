import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryExpiringStore, openExpiringStore, RedisExpiringStore, type ExpiringStore } from '../core/util/expiring-store.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { testRedis } from './fixtures/redis.js';

describe('MemoryExpiringStore', () => {
  it('counts within a window that starts at the first increment', async () => {
    const clock = new ManualClock();
    const store = new MemoryExpiringStore(clock);
    assert.equal(await store.increment('k', 1000), 1);
    clock.advance(600);
    assert.equal(await store.increment('k', 1000), 2, 'the window is not extended');
    clock.advance(400);
    assert.equal(await store.increment('k', 1000), 1, 'a new window');
  });

  it('expires values by the clock and forgets deleted ones', async () => {
    const clock = new ManualClock();
    const store = new MemoryExpiringStore(clock);
    await store.set('a', 'x', 100);
    assert.equal(await store.get('a'), 'x');
    clock.advance(100);
    assert.equal(await store.get('a'), undefined);
    await store.set('b', 'y', 100);
    await store.delete('b');
    assert.equal(await store.get('b'), undefined);
  });

  it('stays within its size, dropping expired then oldest entries', async () => {
    const clock = new ManualClock();
    const store = new MemoryExpiringStore(clock, 100);
    for (let i = 0; i < 250; i++) await store.set(`k${i}`, 'v', 10_000);
    assert.ok(store.size <= 100);
    assert.equal(await store.get('k249'), 'v', 'the newest survive');
    assert.equal(await store.get('k0'), undefined);
  });
});

describe('RedisExpiringStore', () => {
  let redis: Awaited<ReturnType<typeof testRedis>>;
  let store: ExpiringStore;

  before(async () => {
    redis = await testRedis();
    store = new RedisExpiringStore(redis.client, `${redis.prefix}unit:`);
  });
  after(() => redis.cleanup());

  it('counts atomically with one window', async () => {
    const counts = await Promise.all(Array.from({ length: 20 }, () => store.increment('c', 60_000)));
    assert.deepEqual(counts.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
    const ttl = await redis.client.pttl(`${redis.prefix}unit:c`);
    assert.ok(ttl > 0 && ttl <= 60_000);
  });

  it('stores, expires and deletes values', async () => {
    await store.set('v', 'hello', 50);
    assert.equal(await store.get('v'), 'hello');
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(await store.get('v'), undefined);
    await store.set('w', 'x', 60_000);
    await store.delete('w');
    assert.equal(await store.get('w'), undefined);
  });

  it('is what auto picks when Redis is configured, and memory otherwise', () => {
    const clock = new ManualClock();
    assert.ok(openExpiringStore('auto', 'p', clock, redis.client) instanceof RedisExpiringStore);
    assert.ok(openExpiringStore('memory', 'p', clock, redis.client) instanceof MemoryExpiringStore);
    assert.ok(openExpiringStore('auto', 'p', clock, undefined) instanceof MemoryExpiringStore);
    assert.throws(() => openExpiringStore('redis', 'p', clock, undefined), /store: redis needs a redis: section/);
  });
});
