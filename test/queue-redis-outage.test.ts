import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { CONFIRM } from '../plugins/queue-redis/scripts.js';
import { fixturePlugin } from './fixtures/paths.js';
import { DedicatedRedis } from './harness/dedicated-redis.js';
import { eventually } from './harness/eventually.js';
import { LostReplyRelay } from './harness/lost-reply-relay.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * queue-redis while the Redis of the test's own is killed and started again
 * (with its append-only file, so what it had acknowledged comes back): a
 * message refused with 451 while Redis was away must not turn up in Redis
 * afterwards, and the deliveries that were running when it died are recorded
 * as soon as it is back, not after `delivery.leaseTime`.
 */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function persistentRedis(): Promise<DedicatedRedis> {
  const dir = tempDir('petrel-redis-outage-');
  const redis = await DedicatedRedis.start(['--dir', dir.path, '--appendonly', 'yes', '--appendfsync', 'always']);
  cleanups.push(async () => {
    await redis.stop();
    dir.remove();
  });
  return redis;
}

async function petrelOn(redis: { url: string }, config: Record<string, unknown> = {}, plugins: unknown[] = [], commandTimeout = '500ms'): Promise<TestServer> {
  const server = await startTestServer({
    redis: { url: redis.url, keyPrefix: 'petrel:', commandTimeout },
    plugins: [{ name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } }, { name: 'queue-redis', options: { checkPersistence: false } }, ...plugins],
    ...config,
  });
  cleanups.push(() => server.stop());
  return server;
}

/** The message hashes in Redis and the ids in the `all` index. */
async function queueKeys(redis: DedicatedRedis): Promise<{ messages: string[]; listed: string[] }> {
  const admin = new Redis(redis.url);
  try {
    const messages = (await admin.keys('petrel:queue:m:*')).map((key) => /\{(.+)\}$/.exec(key)![1]).sort();
    const listed = (await admin.zrange('petrel:queue:all', '0', '-1')).sort();
    return { messages, listed };
  } finally {
    admin.disconnect();
  }
}

describe('queue-redis across a Redis outage', () => {
  it('a message refused with 451 while Redis is away is not written to Redis when it comes back', async () => {
    const redis = await persistentRedis();
    const server = await petrelOn(redis, { delivery: { enabled: false } });
    const client = await server.client();
    await redis.stop();
    const refused = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'refused' }));
    assert.match(refused.raw, /^451 /);
    await redis.restart();
    // Once a message is accepted again, the client has reconnected and sent what it kept for Redis.
    const accepted = await eventually(async () => {
      const reply = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'accepted' }));
      return reply.code === 250 ? reply : undefined;
    }, 'a 250 after Redis came back');
    await client.quit();
    const id = accepted.raw.split(' ').pop()!;
    const keys = await queueKeys(redis);
    assert.deepEqual(keys, { messages: [id], listed: [id] }, 'only the accepted message is in Redis, and it is listed');
    assert.deepEqual((await server.petrel.queue.list()).map((m) => m.id), [id]);
  });

  it('commands a stalled Redis runs after Petrel gave up on them change nothing: no orphan message, no lease held by nobody', async () => {
    const redis = await persistentRedis();
    const server = await petrelOn(redis, { delivery: { enabled: false } });
    const client = await server.client();
    const queued = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'queued' }));
    assert.match(queued.raw, /^250 /);
    const id = queued.raw.split(' ').pop()!;

    // Frozen (SIGSTOP), Redis keeps what was sent to it and runs it when it thaws, after the 451.
    redis.pause();
    const refused = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'refused' }));
    assert.match(refused.raw, /^451 /);
    await assert.rejects(server.petrel.queue.claim(id, 600_000), 'an operator claim that timed out');
    redis.resume();
    await client.quit();
    const admin = new Redis(redis.url);
    await admin.ping().finally(() => admin.disconnect());

    assert.deepEqual(await queueKeys(redis), { messages: [id], listed: [id] }, 'the refused message is not in Redis');
    const leases = await server.petrel.queue.lease(1, 60_000);
    assert.deepEqual(leases.map((lease) => lease.message.id), [id], 'the claim that timed out does not hold the message');
  });

  it('a confirmation whose reply was lost (ioredis sends it again after reconnecting) is still a 250: the message is stored', async () => {
    const redis = await persistentRedis();
    const relay = await LostReplyRelay.start(redis.port);
    cleanups.push(() => relay.close());
    // A command timeout long enough for the repeat to reach Redis within the script's deadline.
    const server = await petrelOn(relay, { delivery: { enabled: false } }, [], '5s');
    const client = await server.client();
    const first = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'first' }));
    assert.match(first.raw, /^250 /);
    // The scripts are in Redis's cache now: ioredis calls them by their SHA1.
    relay.loseReplyTo(createHash('sha1').update(CONFIRM).digest('hex'));
    const second = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'second' }));
    await client.quit();
    assert.equal(relay.lost, 1, 'the reply to the confirmation was lost');
    const ids = [first, second].map((reply) => reply.raw.split(' ').pop()!);
    const keys = await queueKeys(redis);
    assert.equal(keys.messages.length, 2, 'both messages are stored (the confirmation went through)');
    assert.match(second.raw, /^250 /, 'a message Redis keeps is acknowledged, not refused (the client would send it again: a duplicate)');
    assert.deepEqual(keys, { messages: [...ids].sort(), listed: [...ids].sort() });
  });

  it('a deferral whose index update fails after it was recorded is due at its next try once the index takes it, not at the lease deadline', async () => {
    const redis = await persistentRedis();
    const admin = new Redis(redis.url);
    cleanups.push(async () => admin.disconnect());
    let attempts = 0;
    const sink = await SinkServer.start({
      data: async () => {
        attempts++;
        if (attempts > 1) return undefined;
        // From here on Redis refuses ZADD (ACL): the settle script records the deferral, the index update after it fails.
        await admin.acl('SETUSER', 'default', '-zadd');
        return { code: 451, text: '4.7.1 try again later' };
      },
    });
    cleanups.push(() => sink.close());
    const server = await petrelOn(redis, { delivery: { leaseTime: '10m', retry: ['200ms'], idlePoll: '1s' } }, [
      { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
    ]);
    const client = await server.client();
    assert.match((await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    try {
      await eventually(() => server.logs.find({ code: 'PETREL_QUEUE_UNAVAILABLE' }).some((line) => /cannot record the attempt/.test(String(line.msg))), 'a settle whose index update failed');
    } finally {
      await admin.acl('SETUSER', 'default', '+zadd');
    }
    await sink.waitUntil((messages) => messages.length === 1, 20_000, 'the deferred message tried again and delivered');
    assert.equal(attempts, 2);
  });

  it('deliveries running when Redis died are recorded when it is back, long before their lease runs out', async () => {
    const redis = await persistentRedis();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const attempts = new Map<string, number>();
    const sink = await SinkServer.start({
      // The first attempt of each message waits for the test, then is deferred; the second is accepted.
      data: async (message) => {
        const subject = /^Subject: (.*)$/m.exec(message.data.toString())![1];
        attempts.set(subject, (attempts.get(subject) ?? 0) + 1);
        if (attempts.get(subject)! > 1) return undefined;
        await gate;
        return { code: 451, text: '4.7.1 try again later' };
      },
    });
    cleanups.push(() => sink.close());
    const server = await petrelOn(redis, { delivery: { leaseTime: '10m', retry: ['200ms'], idlePoll: '1s' } }, [
      { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
    ]);
    const client = await server.client();
    for (let i = 0; i < 3; i++) {
      const reply = await client.sendMail('sender@origin.test', [`rcpt${i}@remote.test`], sampleMessage({ subject: `in flight ${i}` }));
      assert.match(reply.raw, /^250 /);
    }
    await client.quit();
    await eventually(() => attempts.size === 3, 'three deliveries at the sink');

    await redis.stop();
    release();
    // Each of the three attempts ended while Redis was away: none could be recorded.
    await eventually(() => new Set(server.logs.lines.filter((line) => line.level === 'error' && typeof line.qid === 'string').map((line) => line.qid)).size === 3, 'three results that could not be recorded');
    await redis.restart();

    await sink.waitUntil((messages) => messages.length === 3, 20_000, 'the three deferred messages tried again and delivered');
    await eventually(async () => (await queueKeys(redis)).messages.length === 0, 'the queue empty in Redis').catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(await queueKeys(redis))}`);
    });
    assert.deepEqual([...attempts.values()], [2, 2, 2], 'each message: one deferred attempt, one delivery');
  });
});
