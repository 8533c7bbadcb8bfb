import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ExpiringStores, MemoryExpiringStore, RedisExpiringStore, type ExpiringStore } from '../core/util/expiring-store.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { testRedis } from './fixtures/redis.js';

/** What both stores must do with counters that are given back and keys that are claimed. */
function givesBackAndClaims(store: () => ExpiringStore): void {
  it('takes one back from a counter, never below zero, and leaves a missing counter missing', async () => {
    await store().increment('back', 60_000);
    await store().increment('back', 60_000);
    await store().decrement('back');
    assert.equal(await store().get('back'), '1');
    await store().decrement('back');
    await store().decrement('back');
    assert.equal(await store().get('back'), '0');
    assert.equal(await store().increment('back', 60_000), 1, 'counting goes on from zero');
    await store().decrement('never-counted');
    assert.equal(await store().get('never-counted'), undefined);
  });

  it('lets exactly one of many claims of a key through', async () => {
    const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => store().setIfAbsent('claim', String(i), 60_000)));
    assert.equal(claims.filter(Boolean).length, 1);
    assert.equal(await store().get('claim'), String(claims.indexOf(true)));
  });
}

describe('MemoryExpiringStore', () => {
  const shared = new MemoryExpiringStore(new ManualClock());
  givesBackAndClaims(() => shared);

  it('lets a claimed key be claimed again once it expired', async () => {
    const clock = new ManualClock();
    const store = new MemoryExpiringStore(clock);
    assert.equal(await store.setIfAbsent('gate', 'a', 1000), true);
    assert.equal(await store.setIfAbsent('gate', 'b', 1000), false);
    clock.advance(1000);
    assert.equal(await store.setIfAbsent('gate', 'c', 1000), true);
  });

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
  givesBackAndClaims(() => store);

  it('keeps the expiry of a counter it takes one back from', async () => {
    await store.increment('kept', 60_000);
    await store.increment('kept', 60_000);
    await store.decrement('kept');
    const ttl = await redis.client.pttl(`${redis.prefix}unit:kept`);
    assert.ok(ttl > 0 && ttl <= 60_000, `still expires (pttl ${ttl})`);
  });

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
    assert.ok(new ExpiringStores(clock, redis.client).open('auto', 'p') instanceof RedisExpiringStore);
    assert.ok(new ExpiringStores(clock, redis.client).open('memory', 'p') instanceof MemoryExpiringStore);
    assert.ok(new ExpiringStores(clock, undefined).open('auto', 'p') instanceof MemoryExpiringStore);
    assert.throws(() => new ExpiringStores(clock, undefined).open('redis', 'p'), /store: redis needs a redis: section/);
  });
});

describe('ExpiringStores', () => {
  it('hands every opener of a namespace the same memory store, so its state outlives a plugin instance', async () => {
    const stores = new ExpiringStores(new ManualClock(), undefined);
    await stores.open('auto', 'auth-file').set('lock:192.0.2.0/32', '5', 60_000);
    assert.equal(await stores.open('memory', 'auth-file').get('lock:192.0.2.0/32'), '5');
    assert.equal(await stores.open('auto', 'greylist').get('lock:192.0.2.0/32'), undefined, 'namespaces are apart');
  });
});
