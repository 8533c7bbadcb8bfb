import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { newMail, waitForMail } from './harness/maildir.js';
import { MisbehavingServer } from './harness/misbehaving-server.js';
import { sparePort } from './harness/ports.js';
import { RspamdDaemon } from './harness/rspamd-daemon.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const UNSCANNED = '451 4.7.1 Message content could not be scanned, please try again later';

/**
 * The test rspamd: thresholds far above anything DNS-dependent rules can add
 * (so results do not depend on the network), and marker words in the Subject
 * that give each action rspamd can answer.
 */
const RSPAMD_CONFIG = {
  'actions.conf': 'reject = 1000;\nadd_header = 500;\ngreylist = null;\nsubject = "[SPAM] %s";\n',
  'regexp.conf': [
    'PETREL_JUNK { re = "Subject=/petrel-junk-marker/i"; score = 600.0; description = "test: spam to file as junk"; }',
    'PETREL_REWRITE { re = "Subject=/petrel-rewrite-marker/i"; score = 0.1; description = "test: rewrite the subject"; }',
    'PETREL_SOFT { re = "Subject=/petrel-soft-marker/i"; score = 0.1; description = "test: soft reject"; }',
    'PETREL_GREY { re = "Subject=/petrel-grey-marker/i"; score = 0.1; description = "test: greylist"; }',
    '',
  ].join('\n'),
  'force_actions.conf': [
    'rules {',
    '  PETREL_FORCE_SOFT { action = "soft reject"; expression = "PETREL_SOFT"; message = "Not now, please retry"; }',
    '  PETREL_FORCE_REWRITE { action = "rewrite subject"; expression = "PETREL_REWRITE"; }',
    '  PETREL_FORCE_GREY { action = "greylist"; expression = "PETREL_GREY"; }',
    '}',
    '',
  ].join('\n'),
  // A header rspamd asks the MTA to add (milter.add_headers): it carries the Queue-Id Petrel sent.
  'milter_headers.conf': 'use = ["x-rspamd-queue-id"];\nskip_local = false;\nskip_authenticated = false;\n',
};

async function petrelWith(rspamd: Record<string, unknown>, users?: string, delivery: Record<string, unknown>[] = []): Promise<TestServer> {
  return startTestServer({
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: users !== undefined, insecureAuth: true }],
    delivery: { retry: ['1h'], delayWarningAfter: 0 },
    plugins: [
      ...(users ? [{ name: 'auth-file', options: { file: users, failureDelay: '10ms' } }] : []),
      { name: 'rspamd', options: rspamd },
      { name: 'relay-access' },
      { name: 'queue-spool' },
      ...delivery,
    ],
  });
}

async function send(server: TestServer, from: string, message: string, to = ['alice@localhost']): Promise<string> {
  const client = await server.client();
  const reply = await client.sendMail(from, to, message);
  await client.quit();
  return reply.raw;
}

function field(fields: string[], name: string): string | undefined {
  return fields.find((f) => f.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim();
}

describe('rspamd (a real rspamd on loopback)', () => {
  const dir = tempDir('petrel-rspamd-test-');
  let rspamd: RspamdDaemon;
  let server: TestServer;

  before(async () => {
    rspamd = await RspamdDaemon.start(RSPAMD_CONFIG);
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password' });
    server = await petrelWith({ url: rspamd.url, timeout: '10s' }, users);
  });
  after(async () => {
    await server?.stop();
    await rspamd?.stop();
    dir.remove();
  });

  it("refuses GTUBE with 550 5.7.1 and rspamd's message, and queues nothing", async () => {
    assert.equal(await send(server, 'gtube@example.org', sampleMessage({ body: GTUBE })), '550 5.7.1 Gtube pattern');
    assert.equal((await server.petrel.queue.list({ sender: 'gtube@example.org' })).length, 0);
    const line = server.logs.find({ msg: 'message refused', from: 'gtube@example.org' })[0];
    assert.deepEqual(line.scans, ['rspamd=spam (score=1000.0/1000 action=reject)']);
  });

  it("accepts a clean message with the spam headers, rspamd's own header edits, and the verdict", async () => {
    const message = ['X-Spam: Yes', 'X-Spam-Score: 0.00', sampleMessage({ to: 'alice@localhost, bob@localhost', subject: 'lunch on friday', body: 'Shall we meet at noon?' })].join('\r\n');
    const reply = await send(server, 'clean@example.org', message, ['alice@localhost', 'bob@localhost']);
    assert.match(reply, /^250 /);
    const queueId = /queued as (\S+)/.exec(reply)![1];
    const fields = headerFields(await queuedMessageFrom(server, 'clean@example.org'));
    assert.equal(field(fields, 'X-Spam'), undefined, 'the forged X-Spam is gone (rspamd asked too)');
    assert.equal(fields.filter((f) => f.startsWith('X-Spam-Score:')).length, 1, 'only our score');
    assert.match(field(fields, 'X-Spam-Score') ?? '', /^\d+\.\d\d \/ 1000\.00$/);
    const symbols = field(fields, 'X-Spam-Symbols') ?? '';
    assert.match(symbols, /TO_MATCH_ENVRCPT_ALL\(/, 'both recipients were passed as Rcpt (To: names both)');
    assert.equal(field(fields, 'X-Rspamd-Queue-Id'), queueId, 'milter.add_headers applied; Queue-Id passed');
    assert.match(field(fields, 'X-Petrel-Filter') ?? '', /^rspamd=clean \(score=\d+\.\d\/1000 action=no action\)$/);
    assert.equal(field(fields, 'X-Petrel-Quarantine'), undefined);
  });

  it('marks an "add header" verdict as spam and quarantines it', async () => {
    assert.match(await send(server, 'junk@example.org', sampleMessage({ subject: 'cheap petrel-junk-marker' })), /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'junk@example.org'));
    assert.equal(field(fields, 'X-Spam'), 'Yes');
    assert.match(field(fields, 'X-Spam-Symbols') ?? '', /^PETREL_JUNK\(600\.00\)/, 'highest score first');
    assert.match(field(fields, 'X-Petrel-Quarantine') ?? '', /^rspamd: add header, score 6\d\d\.\d\d$/);
    assert.match(field(fields, 'X-Petrel-Filter') ?? '', /^rspamd=spam \(score=6\d\d\.\d\/1000 action=add header\)$/);
  });

  it('files an "add header" verdict into the Junk folder of each recipient (deliver-maildir), and a clean one into the inbox', async () => {
    const delivering = await petrelWith({ url: rspamd.url, timeout: '10s' }, undefined, [{ name: 'deliver-maildir' }]);
    try {
      assert.match(await send(delivering, 'junk@example.org', sampleMessage({ subject: 'cheap petrel-junk-marker' }), ['alice@localhost', 'bob@localhost']), /^250 /);
      assert.match(await send(delivering, 'friend@example.org', sampleMessage({ subject: 'lunch' }), ['alice@localhost']), /^250 /);
      const root = join(delivering.dataDir, 'maildir');
      for (const user of ['alice', 'bob']) {
        const [junk] = await waitForMail(join(root, user, '.Junk'));
        assert.match(junk, /\r\nX-Petrel-Quarantine: rspamd: add header, score 6\d\d\.\d\d\r\n/);
        assert.match(junk, /\r\nX-Spam: Yes\r\n/);
      }
      const [inbox] = await waitForMail(join(root, 'alice'));
      assert.match(inbox, /Subject: lunch/);
      assert.deepEqual(newMail(join(root, 'bob')), []);
    } finally {
      await delivering.stop();
    }
  });

  it('rewrites the Subject as rspamd says for "rewrite subject", and quarantines', async () => {
    assert.match(await send(server, 'rewrite@example.org', sampleMessage({ subject: 'offer petrel-rewrite-marker' })), /^250 /);
    const fields = headerFields(await queuedMessageFrom(server, 'rewrite@example.org'));
    assert.deepEqual(fields.filter((f) => f.startsWith('Subject:')), ['Subject: [SPAM] offer petrel-rewrite-marker']);
    assert.equal(field(fields, 'X-Spam'), 'Yes');
    assert.match(field(fields, 'X-Petrel-Quarantine') ?? '', /^rspamd: rewrite subject/);
  });

  it('defers "soft reject" and "greylist" with 451 4.7.1', async () => {
    assert.equal(await send(server, 'soft@example.org', sampleMessage({ subject: 'petrel-soft-marker' })), '451 4.7.1 Not now, please retry');
    assert.equal(await send(server, 'grey@example.org', sampleMessage({ subject: 'petrel-grey-marker' })), '451 4.7.1 Greylisted, please try again later');
    assert.equal((await server.petrel.queue.list({ sender: 'soft@example.org' })).length, 0);
    assert.equal((await server.petrel.queue.list({ sender: 'grey@example.org' })).length, 0);
  });

  it('does not scan authenticated submission', async () => {
    const client = await server.client();
    await client.command(plainAuth('alice@localhost', 'alice password'), /^235 /);
    assert.match((await client.sendMail('alice@localhost', ['bob@localhost'], sampleMessage({ body: GTUBE }))).raw, /^250 /);
    await client.quit();
    assert.equal(field(headerFields(await queuedMessageFrom(server, 'alice@localhost')), 'X-Petrel-Filter'), undefined);
  });
});

describe('rspamd that fails: down, silent, cut short, garbage', () => {
  let broken: MisbehavingServer;
  const servers: Record<string, TestServer> = {};

  before(async () => {
    broken = await MisbehavingServer.start({ kind: 'silent' });
    const nobody = `http://127.0.0.1:${await sparePort()}`;
    for (const failMode of ['tempfail', 'accept']) {
      servers[`${failMode}-broken`] = await petrelWith({ url: broken.url, timeout: '500ms', failMode });
      servers[`${failMode}-down`] = await petrelWith({ url: nobody, timeout: '500ms', failMode });
    }
  });
  after(async () => {
    for (const server of Object.values(servers)) await server.stop();
    await broken?.stop();
  });

  const failures: { name: string; server: 'broken' | 'down'; behaviour?: MisbehavingServer['behaviour']; why: RegExp }[] = [
    { name: 'down (connection refused)', server: 'down', why: /ECONNREFUSED/ },
    { name: 'silent past the timeout', server: 'broken', behaviour: { kind: 'silent' }, why: /no answer within 500 ms/ },
    {
      name: 'closing in the middle of its answer',
      server: 'broken',
      behaviour: { kind: 'answer-and-close', bytes: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"action":"no act' },
      why: /in the middle of (its|the) answer/,
    },
    { name: 'answering something that is not HTTP', server: 'broken', behaviour: { kind: 'answer-and-close', bytes: 'SPAMD/1.5 0 EX_OK\r\n\r\n' }, why: /not an HTTP answer/ },
    {
      name: 'answering HTTP that is not JSON',
      server: 'broken',
      behaviour: { kind: 'answer-and-close', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n\r\nthis is not json' },
      why: /not JSON: this is not json/,
    },
    {
      name: 'answering JSON without a verdict',
      server: 'broken',
      behaviour: { kind: 'answer-and-close', bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"score":1}' },
      why: /makes no sense/,
    },
  ];

  for (const failure of failures) {
    it(`rspamd ${failure.name}: 451 4.7.1 and nothing queued with failMode tempfail; 250 marked not scanned with accept`, async () => {
      if (failure.behaviour) broken.behaviour = failure.behaviour;
      const tempfail = servers[`tempfail-${failure.server}`];
      const sender = `${failure.server}-${failures.indexOf(failure)}@example.org`;
      assert.equal(await send(tempfail, sender, sampleMessage({ body: GTUBE })), UNSCANNED);
      assert.equal((await tempfail.petrel.queue.list({ sender })).length, 0);
      const warning = tempfail.logs.find({ msg: 'rspamd gave no verdict' }).at(-1);
      assert.ok(warning, 'a warning is logged');

      const accept = servers[`accept-${failure.server}`];
      assert.match(await send(accept, sender, sampleMessage({ body: GTUBE })), /^250 /);
      const verdict = field(headerFields(await queuedMessageFrom(accept, sender)), 'X-Petrel-Filter') ?? '';
      assert.match(verdict, /^rspamd=unscanned \(not scanned: /);
      assert.match(verdict, failure.why);
    });
  }
});
