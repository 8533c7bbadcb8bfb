import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testRedis } from './fixtures/redis.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { attemptMessage } from './harness/send-attempt.js';
import { SmtpTestClient } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';

/*
 * Two Petrel processes side by side (the real CLI, `petrel start`), as two
 * nodes of one installation. With the Redis store they enforce one limit
 * between them; with the memory store each enforces its own.
 */

const temp = tempDir();
const nodes: ChildPetrel[] = [];
let redis: Awaited<ReturnType<typeof testRedis>>;

before(async () => {
  redis = await testRedis();
});
after(async () => {
  for (const node of nodes) {
    node.kill('SIGTERM');
    await node.exited();
  }
  await redis.cleanup();
  temp.remove();
});

const RULES = [
  { name: 'sender-per-minute', count: 'messages', key: 'sender', limit: 10, window: '1m' },
  { name: 'concurrent-per-ip', count: 'concurrent', key: 'ip', limit: 2 },
];

async function startNodes(store: 'memory' | 'redis'): Promise<[ChildPetrel, ChildPetrel]> {
  // Both nodes of a pair share a prefix; each pair has its own.
  const prefix = `${redis.prefix}${nodes.length}:`;
  const start = (name: string) =>
    ChildPetrel.start(temp.path, {
      server: { hostname: `${name}.petrel.test`, dataDir: `${temp.path}/${store}-${nodes.length}-${name}`, localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      ...(store === 'redis' ? { redis: { url: redis.url, keyPrefix: prefix } } : {}),
      plugins: [{ name: 'rate-limit', options: { store, rules: RULES } }, { name: 'relay-access' }, { name: 'queue-spool' }],
    });
  const pair = await Promise.all([start('node-a'), start('node-b')]);
  nodes.push(...pair);
  return pair;
}

const sendOne = (node: ChildPetrel, sender: string) => attemptMessage(node.port(), sender);

describe('rate limits across two Petrel processes', () => {
  it('redis store: 10 messages a minute per sender between both nodes; the 11th is deferred whichever node gets it', async () => {
    const [a, b] = await startNodes('redis');
    for (let i = 0; i < 10; i++) {
      const reply = await sendOne(i % 2 === 0 ? a : b, 'shared@example.org');
      assert.match(reply, /^250 /, `message ${i + 1} of 10`);
    }
    for (const node of [a, b]) {
      const reply = await sendOne(node, 'shared@example.org');
      assert.match(reply, /^451 4\.7\.1 Too many messages from <shared@example\.org> \(limit 10 per minute\), try again in \d+ seconds$/);
    }
    assert.match(await sendOne(b, 'someone-else@example.org'), /^250 /);
  });

  it('redis store: concurrency slots are shared, and come back when a connection closes', async () => {
    const [a, b] = await startNodes('redis');
    const onA = await SmtpTestClient.ready(a.port());
    await SmtpTestClient.ready(b.port());
    for (const node of [a, b]) {
      const third = await SmtpTestClient.connect(node.port());
      const reply = await third.expect(/^421 /);
      assert.equal(reply.raw, '421 4.7.0 Too many simultaneous connections from 127.0.0.1 (limit 2 at once), try again later');
    }
    await onA.quit();
    const deadline = Date.now() + 5000;
    for (;;) {
      const client = await SmtpTestClient.connect(b.port());
      const reply = await client.expect(/^\d{3} /);
      client.close();
      if (reply.code === 220) break;
      assert.ok(Date.now() < deadline, 'the slot given back on node a never became free on node b');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it('memory store: each node counts on its own', async () => {
    const [a, b] = await startNodes('memory');
    for (const node of [a, b]) {
      for (let i = 0; i < 10; i++) assert.match(await sendOne(node, 'split@example.org'), /^250 /, `message ${i + 1} on one node`);
    }
    for (const node of [a, b]) assert.match(await sendOne(node, 'split@example.org'), /^451 4\.7\.1 Too many messages/);
  });
});
