import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ATTACHMENT_NAME, ATTACHMENT_SIGNATURE, ATTACHMENT_VIRUS, BODY_SIGNATURE, BODY_VIRUS, messageWithAttachment, TestClamd } from './fixtures/clamd.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { describeScannerFailures, type ScannerTarget } from './fixtures/scanner-failures.js';
import { configProblems } from './harness/config-problems.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const field = (fields: string[], name: string) => fields.filter((f) => f.toLowerCase().startsWith(`${name.toLowerCase()}:`));


async function send(server: TestServer, from: string, message: string): Promise<string> {
  const client = await server.client();
  const reply = await client.sendMail(from, ['postmaster@localhost'], message);
  await client.quit();
  return reply.raw;
}

/** StreamMaxLength of the test's clamd: a message of 300 KB passes it. */
const STREAM_MAX_LENGTH = '100K';
const OVER_STREAM_MAX = `${'a line of harmless filler text\r\n'.repeat(10_000)}`;

describe('clamav, against a real clamd', () => {
  let clamd: TestClamd;
  const servers = new Map<string, TestServer>();

  before(async () => {
    clamd = await TestClamd.start({ streamMaxLength: STREAM_MAX_LENGTH });
    const targets: [string, Record<string, unknown>][] = [
      ['unix', { socket: clamd.socket }],
      ['tcp', { host: '127.0.0.1', port: clamd.port }],
      ['tcp, failMode accept', { port: clamd.port, failMode: 'accept' }],
      ['unix, small maxSize', { socket: clamd.socket, maxSize: '50KiB' }],
    ];
    for (const [name, options] of targets) {
      servers.set(name, await startTestServer({ plugins: [{ name: 'clamav', options }, { name: 'relay-access' }, { name: 'queue-spool' }] }));
    }
  });
  after(async () => {
    for (const server of servers.values()) await server.stop();
    await clamd?.stop();
  });

  for (const transport of ['unix', 'tcp']) {
    const server = () => servers.get(transport) as TestServer;

    it(`refuses the test virus in the body with 554 5.7.1 naming the signature, and queues nothing (${transport})`, async () => {
      const reply = await send(server(), 'virus@example.org', sampleMessage({ body: `Open this: ${BODY_VIRUS}` }));
      assert.equal(reply, `554 5.7.1 Message refused: virus found (${BODY_SIGNATURE})`);
      assert.equal((await server().petrel.queue.list({ sender: 'virus@example.org' })).length, 0);
      const [line] = server().logs.find({ msg: 'message refused', from: 'virus@example.org' });
      assert.deepEqual(line?.scans, [`clamav=virus (${BODY_SIGNATURE})`]);
    });

    it(`refuses the test virus as a base64 attachment (${transport})`, async () => {
      const reply = await send(server(), 'attached@example.org', messageWithAttachment('attached@example.org', ATTACHMENT_VIRUS, ATTACHMENT_NAME));
      assert.equal(reply, `554 5.7.1 Message refused: virus found (${ATTACHMENT_SIGNATURE})`);
      assert.equal((await server().petrel.queue.list({ sender: 'attached@example.org' })).length, 0);
    });

    it(`accepts a clean message, with the verdict in X-Petrel-Filter (${transport})`, async () => {
      assert.match(await send(server(), 'clean@example.org', messageWithAttachment('clean@example.org', Buffer.from('an ordinary file\n'), 'notes.txt')), /^250 /);
      const fields = headerFields(await queuedMessageFrom(server(), 'clean@example.org'));
      assert.deepEqual(field(fields, 'X-Petrel-Filter'), ['X-Petrel-Filter: clamav=clean']);
    });
  }

  it("follows failMode tempfail when clamd refuses a message over its StreamMaxLength: 451 4.7.1, nothing queued", async () => {
    const server = servers.get('unix') as TestServer;
    assert.match(await send(server, 'large@example.org', sampleMessage({ body: OVER_STREAM_MAX })), /^451 4\.7\.1 /);
    assert.equal((await server.petrel.queue.list({ sender: 'large@example.org' })).length, 0);
  });

  it('follows failMode accept when clamd refuses a message over its StreamMaxLength: 250, marked not scanned', async () => {
    const server = servers.get('tcp, failMode accept') as TestServer;
    assert.match(await send(server, 'large@example.org', sampleMessage({ body: OVER_STREAM_MAX })), /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'large@example.org'));
    // clamd answers "size limit exceeded" and closes at once; when that close beats its answer to us
    // (our next chunk meets a closed connection), the reason says what was likely (clamd-client.ts).
    assert.match(field(fields, 'X-Petrel-Filter')[0], /^X-Petrel-Filter: clamav=unscanned \(not scanned: .*StreamMaxLength/);
  });

  it('does not send a message over maxSize: it passes, marked too big', async () => {
    const server = servers.get('unix, small maxSize') as TestServer;
    assert.match(await send(server, 'large@example.org', sampleMessage({ body: `${BODY_VIRUS}\r\n${OVER_STREAM_MAX}` })), /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'large@example.org'));
    assert.match(field(fields, 'X-Petrel-Filter')[0], /^X-Petrel-Filter: clamav=unscanned \(not scanned: too big, \d+ bytes > maxSize 51200\)$/);
  });
});

describe('clamav options', () => {
  const dir = tempDir('petrel-clamav-config-');
  after(() => dir.remove());

  it('refuses socket and host together, naming the key and line', async () => {
    const text = ['listeners: [{ name: mx, port: 2525, tls: none }]', 'plugins:', '  - name: clamav', '    options: { socket: /run/clamav/clamd.ctl, host: 127.0.0.1 }', '  - name: relay-access', '  - name: queue-spool', ''].join('\n');
    const problem = await configProblems(text, join(dir.path, 'mta.config.yaml'));
    assert.match(problem, /mta\.config\.yaml:4:\d+ plugins\[0\]\.options\.socket: .*either socket or host/);
  });
});

describeScannerFailures(
  'clamav',
  ['unix', 'tcp'],
  { cut: 'stream: Petrel.Te', garbage: 'HTTP/1.1 400 Bad Request\r\n\r\n\0' },
  (target: ScannerTarget) => ('socket' in target ? { socket: target.socket } : { port: target.port }),
);
