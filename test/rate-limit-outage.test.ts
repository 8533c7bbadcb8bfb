import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DedicatedRedis } from './harness/dedicated-redis.js';
import { attemptMessage } from './harness/send-attempt.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/*
 * Redis goes away while Petrel runs, and comes back. This test starts a
 * redis-server of its own on a spare port and kills it; the shared Redis on
 * 6379 is never touched. Listener "mx" has a fail-open rule, listener
 * "strict" a fail-closed one, both 2 messages a minute per sender.
 */

let redis: DedicatedRedis;
let server: TestServer;

before(async () => {
  redis = await DedicatedRedis.start();
  server = await startTestServer({
    redis: { url: redis.url, keyPrefix: 'petrel-test:outage:' },
    listeners: [
      { name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' },
      { name: 'strict', host: '127.0.0.1', port: 0, tls: 'none' },
    ],
    plugins: [
      {
        name: 'rate-limit',
        options: {
          store: 'redis',
          timeout: '500ms',
          rules: [
            { name: 'open-per-sender', count: 'messages', key: 'sender', limit: 2, window: '1m', failMode: 'open', listeners: ['mx'] },
            { name: 'closed-per-sender', count: 'messages', key: 'sender', limit: 2, window: '1m', failMode: 'closed', listeners: ['strict'] },
          ],
        },
      },
      { name: 'relay-access' },
      { name: 'queue-spool' },
    ],
  });
});

after(async () => {
  await server?.stop();
  await redis?.stop();
});

const sendOne = (listener: string, sender: string) => attemptMessage(server.port(listener), sender);

async function assertEnforced(listener: string, sender: string): Promise<void> {
  assert.match(await sendOne(listener, sender), /^250 /);
  assert.match(await sendOne(listener, sender), /^250 /);
  assert.match(await sendOne(listener, sender), /^451 4\.7\.1 Too many messages/);
}

const pluginWarnings = () => server.logs.lines.filter((line) => line.plugin === 'rate-limit' && line.level === 'warn');

describe('Redis outage', () => {
  it('fail-open lets mail through with one warning, fail-closed answers 451 4.3.0, and limits come back with Redis, without restarting Petrel', async () => {
    await assertEnforced('mx', 'a@example.org');
    await assertEnforced('strict', 'b@example.org');
    assert.equal(pluginWarnings().length, 0);

    await redis.stop();

    for (let i = 0; i < 5; i++) {
      assert.match(await sendOne('mx', 'a@example.org'), /^250 /, `fail-open: message ${i + 1} passes although a@ is over its limit`);
    }
    const warnings = pluginWarnings();
    assert.equal(warnings.length, 1, `one warning for the outage, not one per message:\n${JSON.stringify(warnings, null, 1)}`);
    assert.equal(warnings[0].rule, 'open-per-sender');
    assert.match(String(warnings[0].msg), /^rate-limit store unavailable \(redis is not connected \(\w+\)\); rules failing open \(mail passes unchecked\): open-per-sender; rules failing closed \(451 4\.3\.0\): closed-per-sender$/);

    assert.equal(await sendOne('strict', 'c@example.org'), '451 4.3.0 Rate limiting is temporarily unavailable, try again later');
    assert.equal(pluginWarnings().length, 1, 'the fail-closed decision is part of the same outage: still one warning');

    await redis.restart();

    // ioredis reconnects on its own (every 2 s at most); the fail-closed rule then lets mail through again.
    const deadline = Date.now() + 15_000;
    let reply = '';
    while (Date.now() < deadline) {
      reply = await sendOne('strict', 'd@example.org');
      if (reply.startsWith('250 ')) break;
      assert.match(reply, /^451 4\.3\.0 /);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(reply, /^250 /, 'Petrel did not recover after Redis came back');
    assert.equal(server.logs.find({ plugin: 'rate-limit', msg: 'rate-limit store available again; limits are enforced' }).length, 1);

    // The restarted Redis kept nothing (no persistence), so the counts start again, and are enforced.
    await assertEnforced('mx', 'a@example.org');
    await assertEnforced('strict', 'b@example.org');
  });
});
