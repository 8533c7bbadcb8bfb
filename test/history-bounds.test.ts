import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_REPLY_TEXT } from '../core/delivery/outbound.js';
import { MAX_RECORD_BYTES } from '../core/history/bounded-record.js';
import { timelineLines } from '../core/history/timeline.js';
import { fixturePlugin } from './fixtures/paths.js';
import { afterFirstAttempt, eventually } from './harness/eventually.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const RECIPIENTS = 150;

/**
 * A hostile message cannot blow up its history: a Message-ID as long as the
 * header limit allows, many recipients, and a remote server that answers each
 * of them with a reply of 20 kB. The queue keeps the first MAX_REPLY_TEXT
 * characters of a reply; every history record stays under MAX_RECORD_BYTES,
 * says it was shortened, and is still found by its id, sender and first
 * recipients; the timeline of it stays small.
 */
describe('history of a hostile message', () => {
  let sink: SinkServer;
  let server: TestServer;
  const longReply = `4.2.1 ${'busy '.repeat(4000)}`;

  before(async () => {
    sink = await SinkServer.start({ rcpt: () => ({ code: 451, text: longReply }) });
    server = await startTestServer({
      limits: { recipients: 500 },
      delivery: { retry: ['1h'], delayWarningAfter: 0 },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
      ],
    });
  });

  after(async () => {
    await server?.stop();
    await sink?.close();
  });

  it('keeps every record of it bounded, marked as shortened, and still findable', async () => {
    const to = Array.from({ length: RECIPIENTS }, (_, i) => `r${i}@far.test`);
    const messageId = `<${'m'.repeat(300_000)}@origin.test>`;
    const client = await server.client();
    const reply = await client.sendMail('mallory@origin.test', to, sampleMessage({ from: 'mallory@origin.test', messageId }));
    await client.quit();
    const id = /queued as (\S+)/.exec(reply.raw)![1];
    await afterFirstAttempt(server, id);
    const history = server.petrel.history!;
    await eventually(async () => (await history.recordsOf(id)).some((r) => r.t === 'settled'), 'the attempt to be settled');
    await history.flush();

    const dir = join(server.dataDir, 'history', 'messages');
    const lines = readdirSync(dir).flatMap((name) => readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean));
    const kinds = lines.map((line) => JSON.parse(line) as { t: string; truncated?: boolean });
    assert.deepEqual(kinds.map((r) => r.t).sort(), ['attempt', 'received', 'settled'], 'no record was dropped');
    for (const line of lines) assert.ok(Buffer.byteLength(line) <= MAX_RECORD_BYTES, `a record of ${Buffer.byteLength(line)} bytes`);
    assert.ok(kinds.every((r) => r.truncated === true), 'each record says it was shortened');

    for (const query of [id, 'mallory@origin.test', 'r0@far.test']) {
      const found = await history.find(query);
      assert.equal(found[0]?.id, id, query);
    }
    const queued = await server.petrel.queue.inspect(id);
    const lastReply = queued?.recipients[0].lastReply ?? '';
    assert.match(lastReply, /^451 4\.2\.1 busy busy /, 'the queue keeps the reply');
    assert.ok(lastReply.length <= MAX_REPLY_TEXT + 20, `but not all ${lastReply.length} characters of it`);
    const timeline = timelineLines(await history.recordsOf(id)).join('\n');
    assert.ok(timeline.length < 3 * MAX_RECORD_BYTES, `a timeline of ${timeline.length} characters`);
    assert.match(timeline, /shortened/);
  });
});
