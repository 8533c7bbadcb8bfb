import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { messageWithAttachment } from './fixtures/clamd.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { type Daemon, startClamavMilter } from './harness/milter-daemons.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * The milter plugin in front of a real clamav-milter and clamd, with a
 * signature database the test makes (an MD5 signature of a made-up file):
 * the "virus" is refused with a 5xx that names the signature, and nothing is
 * queued; a clean message passes with clamav-milter's header.
 */

const VIRUS = Buffer.from('Petrel test virus: this line is only dangerous in this test.\r\n');
const SIGNATURE = 'Petrel.Test.Virus';

const cleanups: (() => Promise<void> | void)[] = [];
let milter: Daemon;
let server: TestServer;

before(async () => {
  const dir = tempDir();
  cleanups.push(() => dir.remove());
  ({ milter } = await startClamavMilter(dir.path, VIRUS, SIGNATURE));
  cleanups.push(() => milter.stop());
  server = await startTestServer({
    server: { localDomains: ['petrel.test'] },
    plugins: [
      { name: 'milter', options: { milters: [{ name: 'clamav', socket: milter.socket, timeout: '30s' }] } },
      { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
      { name: 'queue-spool' },
    ],
  });
  cleanups.push(() => server.stop());
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('milter with clamav-milter', () => {
  it('refuses the test virus with a 5xx naming it, and queues nothing', async () => {
    const client = await server.client();
    const reply = await client.sendMail('mallory@example.org', ['bob@petrel.test'], messageWithAttachment('mallory@example.org', VIRUS, 'file.bin'));
    assert.match(reply.raw, /^5\d\d 5\.\d+\.\d+ .*Petrel\.Test\.Virus/, milter.output());
    await client.quit();
    assert.deepEqual(await server.petrel.queue.list({ sender: 'mallory@example.org' }), []);
  });

  it('passes a clean message, with the header clamav-milter adds', async () => {
    const client = await server.client();
    const reply = await client.sendMail('alice@example.org', ['bob@petrel.test'], messageWithAttachment('alice@example.org', Buffer.from('a harmless file\r\n'), 'file.bin'));
    assert.match(reply.raw, /^250 /);
    await client.quit();
    const queued = await queuedMessageFrom(server, 'alice@example.org');
    assert.ok(headerFields(queued).some((field) => /^X-Virus-Status: Clean/i.test(field)), queued);
  });
});
