import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { fixturePlugin } from './fixtures/paths.js';
import { DedicatedRedis } from './harness/dedicated-redis.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * queue-redis inside a running Petrel, against a Redis of the test's own (so
 * it can change its settings and kill it): mail is delivered through the
 * Redis queue, the persistence check speaks up, a Redis that is down
 * gets the client a 451, never a 250, and a full one a 452.
 */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function petrelOn(redis: DedicatedRedis, plugins: unknown[] = []): Promise<TestServer> {
  const server = await startTestServer({
    redis: { url: redis.url, keyPrefix: 'petrel:', commandTimeout: '500ms' },
    delivery: { retry: ['200ms'], idlePoll: '1s' },
    plugins: [{ name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } }, { name: 'queue-redis' }, ...plugins],
  });
  cleanups.push(() => server.stop());
  return server;
}

describe('queue-redis in a running server', () => {
  it('delivers mail through the Redis queue and leaves no keys behind', async () => {
    const dir = tempDir('petrel-redis-');
    const redis = await DedicatedRedis.start(['--dir', dir.path, '--appendonly', 'yes', '--appendfsync', 'always']);
    cleanups.push(async () => {
      await redis.stop();
      dir.remove();
    });
    const sink = await SinkServer.start();
    cleanups.push(() => sink.close());
    const server = await petrelOn(redis, [{ path: fixturePlugin('sink-delivery'), options: { port: sink.port } }]);
    assert.equal(server.logs.find({ code: 'PETREL_REDIS_PERSISTENCE' }).length, 0, 'appendonly yes + appendfsync always: no warning');
    const client = await server.client();
    const reply = await client.sendMail('sender@origin.test', ['one@remote.test', 'two@remote.test'], sampleMessage({ subject: 'via redis' }));
    assert.match(reply.raw, /^250 2\.0\.0 Ok: queued as /);
    await client.quit();
    await sink.waitUntil((messages) => messages.length === 1);
    assert.deepEqual([...sink.messages[0].to].sort(), ['one@remote.test', 'two@remote.test']);
    assert.match(sink.messages[0].data.toString(), /^Subject: via redis/m);
    const admin = new Redis(redis.url);
    try {
      const deadline = Date.now() + 5_000;
      while ((await admin.keys('petrel:*')).length > 0) {
        assert.ok(Date.now() < deadline, `keys left after delivery: ${(await admin.keys('petrel:*')).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      admin.disconnect();
    }
  });

  it('warns loudly at start when Redis does not persist acknowledged mail (appendonly no)', async () => {
    const redis = await DedicatedRedis.start();
    cleanups.push(() => redis.stop());
    const server = await petrelOn(redis);
    const [warning] = server.logs.find({ code: 'PETREL_REDIS_PERSISTENCE' });
    assert.ok(warning, 'a persistence warning was logged');
    assert.equal(warning.level, 'error');
    assert.match(String(warning.msg), /WILL BE LOST/);
    assert.match(String(warning.msg), /appendonly yes/);
  });

  it('answers 451, never 250, when Redis is down at the end of DATA', async () => {
    const redis = await DedicatedRedis.start();
    cleanups.push(() => redis.stop());
    const server = await petrelOn(redis);
    const client = await server.client();
    await client.command('MAIL FROM:<sender@origin.test>');
    await client.command('RCPT TO:<someone@remote.test>');
    await client.command('DATA', /^354 /);
    await redis.stop();
    client.write(sampleMessage());
    const reply = await client.command('.', /^4\d\d /);
    assert.equal(reply.raw, '451 4.3.0 Requested action aborted: local error in processing, please try again later');
    assert.equal(server.logs.find({ code: 'PETREL_QUEUE_UNAVAILABLE', msg: 'queue failed to store the message' }).length, 1);
    await client.quit();
  });

  it('answers 452 4.3.1 when Redis is out of memory (maxmemory reached)', async () => {
    const redis = await DedicatedRedis.start(['--maxmemory-policy', 'noeviction']);
    cleanups.push(() => redis.stop());
    const server = await petrelOn(redis);
    const admin = new Redis(redis.url);
    try {
      // Below what Redis already uses: every write is refused with OOM.
      await admin.config('SET', 'maxmemory', '1');
      const client = await server.client();
      const reply = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage());
      assert.match(reply.raw, /^452 4\.3\.1 /);
      await admin.config('SET', 'maxmemory', '0');
      assert.match((await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage())).raw, /^250 /);
      await client.quit();
    } finally {
      admin.disconnect();
    }
  });
});
