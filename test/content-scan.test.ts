import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { fixturePlugin } from './fixtures/paths.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/** A message whose scanner answer is chosen by X-Test-Verdict (see the scripted-scanner fixture). */
function asking(verdict: string, extra: string[] = []): string {
  return [`X-Test-Verdict: ${verdict}`, ...extra, sampleMessage({ body: 'x'.repeat(200) })].join('\r\n');
}

async function serverWith(scannerOptions: Record<string, unknown>, users?: string): Promise<TestServer> {
  return startTestServer({
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: users !== undefined, insecureAuth: true }],
    plugins: [
      ...(users ? [{ name: 'auth-file', options: { file: users, failureDelay: '10ms' } }] : []),
      { path: fixturePlugin('scripted-scanner'), options: scannerOptions },
      { name: 'relay-access' },
      { name: 'queue-spool' },
    ],
  });
}

describe('content scanning (core/filter) with failMode tempfail', () => {
  const dir = tempDir('petrel-scan-');
  let server: TestServer;
  before(async () => {
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password' });
    server = await serverWith({ timeout: '300ms', maxSize: '4KiB' }, users);
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  async function send(from: string, message: string, to = ['a@localhost']): Promise<string> {
    const client = await server.client();
    const reply = await client.sendMail(from, to, message);
    await client.quit();
    return reply.raw;
  }

  it('scans once per message whatever the number of recipients, and writes the verdict to the header and the log line', async () => {
    const before = server.logs.find({ msg: 'scan called' }).length;
    assert.match(await send('clean@example.org', asking('clean', ['X-Petrel-Filter: scripted-scanner=clean (forged)']), ['a@localhost', 'b@localhost', 'c@localhost']), /^250 /);
    assert.equal(server.logs.find({ msg: 'scan called' }).length - before, 1);
    const fields = headerFields(await queuedMessageFrom(server, 'clean@example.org'));
    assert.deepEqual(fields.filter((f) => f.startsWith('X-Petrel-Filter:')), ['X-Petrel-Filter: scripted-scanner=clean (score=0.5/5 action=no action)'], 'the forged copy is gone');
    const line = server.logs.find({ msg: 'message accepted', from: 'clean@example.org' })[0];
    assert.deepEqual(line.scans, ['scripted-scanner=clean (score=0.5/5 action=no action)']);
  });

  it('passes a spam verdict with its score, and quarantines when the scanner says so', async () => {
    assert.match(await send('spam@example.org', asking('spam')), /^250 /);
    assert.ok(headerFields(await queuedMessageFrom(server, 'spam@example.org')).includes('X-Petrel-Filter: scripted-scanner=spam (score=7.3/5 action=add header)'));
    assert.match(await send('junk@example.org', asking('quarantine', ['X-Petrel-Quarantine: forged'])), /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'junk@example.org'));
    assert.deepEqual(fields.filter((f) => f.startsWith('X-Petrel-Quarantine:')), ['X-Petrel-Quarantine: scripted-scanner: score 9.0 >= 5']);
  });

  it("refuses with the scanner's reply, and the refusal's log line names the verdict", async () => {
    assert.equal(await send('virus@example.org', asking('reject')), '554 5.7.1 virus found: Test.Signature');
    assert.equal((await server.petrel.queue.list({ sender: 'virus@example.org' })).length, 0);
    const line = server.logs.find({ msg: 'message refused', from: 'virus@example.org' })[0];
    assert.deepEqual(line.scans, ['scripted-scanner=virus (Test.Signature)']);
  });

  it('answers 451 4.7.1 and queues nothing when the scanner fails or does not answer in time', async () => {
    assert.equal(await send('fail@example.org', asking('fail')), '451 4.7.1 Message content could not be scanned, please try again later');
    assert.equal(await send('hang@example.org', asking('hang')), '451 4.7.1 Message content could not be scanned, please try again later');
    assert.equal((await server.petrel.queue.list({ sender: 'fail@example.org' })).length, 0);
    assert.equal((await server.petrel.queue.list({ sender: 'hang@example.org' })).length, 0);
    const warning = server.logs.find({ msg: 'scripted-scanner gave no verdict' });
    assert.equal(warning.length, 2);
    assert.deepEqual(server.logs.find({ msg: 'message refused', from: 'hang@example.org' })[0].scans, ['scripted-scanner=unscanned (not scanned: no answer within 300 ms)']);
  });

  it('passes a message bigger than maxSize unscanned, saying so', async () => {
    const big = asking('reject', [`X-Padding: ${'p'.repeat(5000)}`]);
    assert.match(await send('big@example.org', big), /^250 /);
    const field = headerFields(await queuedMessageFrom(server, 'big@example.org')).find((f) => f.startsWith('X-Petrel-Filter:'));
    assert.match(field ?? '', /^X-Petrel-Filter: scripted-scanner=unscanned \(not scanned: too big, \d+ bytes > maxSize 4096\)$/);
  });

  it('does not scan authenticated submission, and still removes forged verdicts', async () => {
    const before = server.logs.find({ msg: 'scan called' }).length;
    const client = await server.client();
    await client.command(plainAuth('alice@localhost', 'alice password'), /^235 /);
    const reply = await client.sendMail('alice@localhost', ['a@localhost'], asking('reject', ['X-Petrel-Filter: scripted-scanner=clean (forged)']));
    await client.quit();
    assert.match(reply.raw, /^250 /);
    assert.equal(server.logs.find({ msg: 'scan called' }).length, before);
    assert.ok(!headerFields(await queuedMessageFrom(server, 'alice@localhost')).some((f) => f.startsWith('X-Petrel-Filter:')));
  });
});

describe('content scanning (core/filter) with failMode accept', () => {
  let server: TestServer;
  before(async () => {
    server = await serverWith({ timeout: '300ms', failMode: 'accept', scanAuthenticated: true });
  });
  after(() => server.stop());

  it('passes a message the scanner failed on, with a header saying it was not scanned and why', async () => {
    for (const [from, verdict, why] of [['fail@example.org', 'fail', 'answer cut short'], ['hang@example.org', 'hang', 'no answer within 300 ms']]) {
      const client = await server.client();
      assert.match((await client.sendMail(from, ['a@localhost'], asking(verdict))).raw, /^250 /);
      await client.quit();
      assert.ok(headerFields(await queuedMessageFrom(server, from)).includes(`X-Petrel-Filter: scripted-scanner=unscanned (not scanned: ${why})`));
    }
  });
});
