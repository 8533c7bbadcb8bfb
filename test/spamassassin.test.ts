import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { describeScannerFailures, type ScannerTarget } from './fixtures/scanner-failures.js';
import { GTUBE, MIDDLING_PHRASE, MIDDLING_RULE, TestSpamd } from './fixtures/spamd.js';
import { join } from 'node:path';
import { configProblems } from './harness/config-problems.js';
import { tempDir } from './harness/temp-dir.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const field = (fields: string[], name: string) => fields.filter((f) => f.toLowerCase().startsWith(`${name.toLowerCase()}:`));

describe('spamassassin, against a real spamd', () => {
  let spamd: TestSpamd;
  let server: TestServer;
  let strict: TestServer;

  before(async () => {
    spamd = await TestSpamd.start();
    const plugins = (options: Record<string, unknown>) => [
      { name: 'spamassassin', options: { port: spamd.port, rejectThreshold: 15, ...options } },
      { name: 'relay-access' },
      { name: 'queue-spool' },
    ];
    server = await startTestServer({ plugins: plugins({ maxSize: '64KiB' }) });
    strict = await startTestServer({ plugins: plugins({ threshold: 10 }) });
  });
  after(async () => {
    await server?.stop();
    await strict?.stop();
    await spamd?.stop();
  });

  async function send(target: TestServer, from: string, body: string, extraHeaders: string[] = []): Promise<string> {
    const client = await target.client();
    const reply = await client.sendMail(from, ['postmaster@localhost'], [...extraHeaders, sampleMessage({ from, body })].join('\r\n'));
    await client.quit();
    return reply.raw;
  }

  it('refuses GTUBE with 550 5.7.1 and queues nothing; the log line has the verdict', async () => {
    const reply = await send(server, 'gtube@example.org', `${GTUBE}\r\n`);
    assert.match(reply, /^550 5\.7\.1 Message refused as spam \(score 10\d\d\.\d, limit 15\)$/);
    assert.equal((await server.petrel.queue.list({ sender: 'gtube@example.org' })).length, 0);
    const [line] = server.logs.find({ msg: 'message refused', from: 'gtube@example.org' });
    assert.match(String(line?.scans), /^spamassassin=spam \(score=10\d\d\.\d\/5 action=reject\)$/);
  });

  it("accepts a clean message with spamd's findings in X-Spam-Status, X-Spam-Score and X-Petrel-Filter; forged copies are gone", async () => {
    const reply = await send(server, 'clean@example.org', 'Lunch at noon tomorrow?', ['X-Spam-Status: No, score=-100 forged', 'X-Spam-Score: -100']);
    assert.match(reply, /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'clean@example.org'));
    const [status] = field(fields, 'X-Spam-Status');
    assert.equal(field(fields, 'X-Spam-Status').length, 1);
    assert.match(status, /^X-Spam-Status: No, score=-?\d+\.\d required=5\.0 tests=\S+$/);
    assert.equal(field(fields, 'X-Spam-Score').length, 1);
    assert.match(field(fields, 'X-Spam-Score')[0], /^X-Spam-Score: -?\d+\.\d$/);
    assert.match(field(fields, 'X-Petrel-Filter')[0], /^X-Petrel-Filter: spamassassin=clean \(score=-?\d+\.\d\/5 action=no action\)$/);
    assert.deepEqual(field(fields, 'X-Petrel-Quarantine'), []);
  });

  it("quarantines a message between spamd's required score and rejectThreshold, with the reason", async () => {
    const reply = await send(server, 'middling@example.org', `Hello, ${MIDDLING_PHRASE}.`);
    assert.match(reply, /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'middling@example.org'));
    assert.match(field(fields, 'X-Spam-Status')[0], new RegExp(`^X-Spam-Status: Yes, score=\\d+\\.\\d required=5\\.0 tests=(\\S+,)?${MIDDLING_RULE}\\b`));
    assert.match(field(fields, 'X-Petrel-Quarantine')[0], /^X-Petrel-Quarantine: spamassassin: score \d+\.\d >= 5$/);
    assert.match(field(fields, 'X-Petrel-Filter')[0], new RegExp(`^X-Petrel-Filter: spamassassin=spam \\(score=\\d+\\.\\d/5 action=quarantine\\)$`));
  });

  it("judges by its own threshold when one is set, not spamd's", async () => {
    assert.match(await send(strict, 'middling@example.org', `Hello, ${MIDDLING_PHRASE}.`), /^250 /);
    const fields = headerFields(await queuedMessageFrom(strict, 'middling@example.org'));
    assert.match(field(fields, 'X-Spam-Status')[0], /^X-Spam-Status: No, score=\d+\.\d required=10\.0 /);
    assert.deepEqual(field(fields, 'X-Petrel-Quarantine'), []);
  });

  it('does not send a message over maxSize: it passes marked too big, and a forged X-Spam-Status does not survive', async () => {
    const reply = await send(server, 'big@example.org', `${GTUBE}\r\n${'a line of filler text\r\n'.repeat(4000)}`, ['X-Spam-Status: No, forged']);
    assert.match(reply, /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'big@example.org'));
    assert.deepEqual(field(fields, 'X-Spam-Status'), []);
    assert.match(field(fields, 'X-Petrel-Filter')[0], /^X-Petrel-Filter: spamassassin=unscanned \(not scanned: too big, \d+ bytes > maxSize 65536\)$/);
  });
});

describe('spamassassin options', () => {
  const dir = tempDir('petrel-spamassassin-config-');
  after(() => dir.remove());

  it('refuses a rejectThreshold below threshold, naming the key and line', async () => {
    const text = ['listeners: [{ name: mx, port: 2525, tls: none }]', 'plugins:', '  - name: spamassassin', '    options: { threshold: 8, rejectThreshold: 6 }', '  - name: relay-access', '  - name: queue-spool', ''].join('\n');
    const problem = await configProblems(text, join(dir.path, 'mta.config.yaml'));
    assert.match(problem, /mta\.config\.yaml:4:\d+ plugins\[0\]\.options\.rejectThreshold: .*must not be below threshold/);
  });
});

describeScannerFailures(
  'spamassassin',
  ['tcp'],
  { cut: 'SPAMD/1.1 0 EX_OK\r\nContent-length: 30\r\nSpam: True ; 9.0 / 5.0\r\n\r\nGTUBE,MIS', garbage: 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n' },
  (target: ScannerTarget) => ('port' in target ? { host: '127.0.0.1', port: target.port } : {}),
);
