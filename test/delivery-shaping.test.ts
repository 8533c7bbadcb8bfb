import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from './fixtures/manual-clock.js';
import { fixturePlugin } from './fixtures/paths.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import type { LogLine } from './harness/log-capture.js';
import { SinkServer, type SinkOptions } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * Outbound shaping end to end: mail goes in over SMTP, the scheduler delivers
 * it through the sink-delivery fixture to a local sink that counts its
 * sessions, answers 421 when told to, and keeps what it accepts. Rates and
 * pauses run on a manual clock where the test needs to say exactly how much
 * time has passed.
 */

const running: { server: TestServer; sink: SinkServer }[] = [];
after(async () => {
  for (const { server, sink } of running) {
    await server.stop().catch(() => undefined);
    await sink.close().catch(() => undefined);
  }
});

async function setup(shaping: Record<string, unknown>, sinkOptions: SinkOptions = {}, options: { clock?: ManualClock; retry?: string; reuse?: boolean } = {}) {
  const sink = await SinkServer.start(sinkOptions);
  const server = await startTestServer(
    {
      delivery: { retry: [options.retry ?? '150ms'], expireAfter: '1h', delayWarningAfter: 0, idlePoll: '200ms', shaping },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port, reuse: options.reuse ?? false } },
      ],
    },
    { clock: options.clock },
  );
  running.push({ server, sink });
  return { server, sink };
}

/**
 * Sends `count` messages, one recipient each, over `connections` SMTP
 * connections at once (each message is fsynced before its 250, so one
 * connection would be slow); returns their Message-IDs in sending order.
 */
async function sendMany(server: TestServer, count: number, recipient: (index: number) => string, connections = 1): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, index) => `<shaping-${index}.${Date.now()}@origin.test>`);
  await Promise.all(
    Array.from({ length: connections }, async (_, offset) => {
      const client = await server.client();
      for (let index = offset; index < count; index += connections) {
        await client.command('MAIL FROM:<sender@origin.test>');
        await client.command(`RCPT TO:<${recipient(index)}>`);
        await client.command('DATA', /^354 /);
        client.write(sampleMessage({ from: 'sender@origin.test', to: recipient(index), messageId: ids[index] }));
        await client.command('.', /^250 /);
      }
      await client.quit();
    }),
  );
  return ids;
}

/** The Message-IDs the sink accepted, in order of arrival. */
function arrivedIds(sink: SinkServer): string[] {
  return sink.messages.map((message) => /^Message-ID: (.*)$/im.exec(message.data.toString())?.[1].trim() ?? '');
}

function shapingLines(server: TestServer, pattern: RegExp): LogLine[] {
  return server.logs.lines.filter((line) => line.component === 'shaping' && pattern.test(String(line.msg)));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('outbound shaping', () => {
  it('a destination limited to 2 connections never sees more than 2 at once while 200 messages drain', async () => {
    // The sink holds the first messages until all 200 are queued, so a backlog builds up for
    // sure; then it takes a little while per message, so deliveries overlap. The target keeps
    // connections open within Delivery.limits, as a pooling target does.
    let allQueued!: () => void;
    const gate = new Promise<void>((resolve) => (allQueued = resolve));
    const { server, sink } = await setup(
      { rules: [{ match: 'remote.test', maxConnections: 2, messagesPerConnection: 25 }] },
      { data: () => gate.then(() => sleep(2)).then(() => undefined) },
      { reuse: true },
    );
    const sent = await sendMany(server, 200, (index) => `user${index}@remote.test`, 10);
    assert.equal(sink.concurrent, 2, 'two deliveries under way, the rest wait their turn');
    allQueued();
    await sink.waitUntil((messages) => messages.length >= 200, 20_000, '200 messages');
    await queueEmpty(server);
    assert.equal(sink.maxConcurrent, 2, 'two sessions at once, never more');
    // The target got messagesPerConnection through Delivery.limits: each connection it closed carried
    // 25 messages; the last two may share the rest (7 × 25 + 13 + 12). Without the limit: 2.
    assert.ok(sink.connections === 8 || sink.connections === 9, `${sink.connections} connections for 200 messages, 25 at most on each`);
    assert.deepEqual(new Set(arrivedIds(sink)), new Set(sent), 'every message arrived');
    assert.equal(sink.messages.length, 200, 'and none twice');
  });

  it('a messages-per-minute limit lets a burst through, then one message per interval', async () => {
    const clock = new ManualClock();
    // 300 a minute is one every 200 ms; a burst of 2 may go back to back.
    const { server, sink } = await setup({ rules: [{ match: 'remote.test', messagesPerMinute: 300, burst: 2 }] }, {}, { clock });
    const sent = await sendMany(server, 6, () => 'someone@remote.test');

    const expectArrived = async (count: number) => {
      await sink.waitUntil((messages) => messages.length >= count, 5_000, `${count} messages`);
      await sleep(400); // the manual clock stands still: nothing more may come, however long we wait
      assert.equal(sink.messages.length, count, `${count} messages so far, no more`);
    };
    await expectArrived(2); // the burst
    clock.advance(200);
    await expectArrived(3); // one interval: one message
    clock.advance(600);
    await expectArrived(5); // three intervals, but a burst of at most 2
    clock.advance(200);
    await expectArrived(6);
    // Two that start together (a burst) may arrive in either order.
    assert.deepEqual(new Set(arrivedIds(sink)), new Set(sent), 'every message arrived');
    assert.equal(sink.messages.length, 6, 'and none twice');
    await queueEmpty(server);
  });

  it('a destination answering 421 is paused with fewer connections, gets every message, and recovers', async () => {
    const clock = new ManualClock();
    let throttling = true;
    let refused = 0;
    const { server, sink } = await setup(
      { rules: [{ match: 'remote.test', maxConnections: 4, backoff: { pause: '300ms', recoverAfter: 2 } }] },
      {
        rcpt: () => {
          if (!throttling) return undefined;
          refused++;
          return { code: 421, text: '4.7.0 Too many connections from your host, slow down' };
        },
        data: () => sleep(5).then(() => undefined),
      },
      { clock, retry: '100ms' },
    );
    const sent = await sendMany(server, 20, (index) => `user${index}@remote.test`);

    await eventually(() => shapingLines(server, /asked us to slow down/).length > 0, 'the back-off', 5_000);
    const [slowed] = shapingLines(server, /asked us to slow down/);
    assert.equal(slowed.level, 'warn');
    assert.equal(slowed.destination, 'remote.test');
    assert.equal(slowed.pauseMs, 300);
    assert.ok((slowed.connections as number) <= 2, `connections halved: ${String(slowed.msg)}`);
    assert.match(String(slowed.reply), /^421 4\.7\.0 Too many connections/);

    // Paused: the clock stands still, so nothing new may reach the destination.
    await sleep(300);
    const connectionsWhilePaused = sink.connections;
    await sleep(400);
    assert.equal(sink.connections, connectionsWhilePaused, 'no new connection during the pause');
    // Only the deliveries already under way when the first 421 came back were refused; without
    // the pause every message would have been refused again at each 100 ms retry.
    assert.ok(refused <= 8, `${refused} RCPTs refused with 421`);

    throttling = false;
    clock.advance(300); // the pause and the retry wait are over
    await sink.waitUntil((messages) => messages.length >= 20, 10_000, 'all 20 messages');
    await queueEmpty(server);
    assert.deepEqual(new Set(arrivedIds(sink)), new Set(sent), 'every message arrived');
    assert.equal(sink.messages.length, 20, 'and none twice');
    assert.equal(shapingLines(server, /asked us to slow down/).length, 1, 'one back-off for one round of 421s');
    const recovered = shapingLines(server, /recovered/);
    assert.equal(recovered.length, 1, 'back to full speed after enough successes');
    assert.equal(recovered[0].connections, 4);
  });
});
