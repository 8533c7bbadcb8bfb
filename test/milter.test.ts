import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { ALL_ACTIONS, type MilterScript, milterSays as says, packet, ScriptedMilter, SMFIP } from './harness/scripted-milter.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * The milter plugin against milters scripted in the test (test/harness/
 * scripted-milter.ts), over real SMTP: what each step sends (macros
 * included), what each answer does, the negotiated shortcuts, the changes at
 * the end of the message, and each way a milter can fail with each
 * defaultAction. The real daemons are in milter-opendkim and milter-clamav.
 */

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface MilterEntry {
  readonly name?: string;
  readonly socket: string;
  readonly timeout?: string;
  readonly defaultAction?: 'tempfail' | 'accept' | 'reject';
}

async function milter(script: MilterScript = {}): Promise<ScriptedMilter> {
  const started = await ScriptedMilter.start(script);
  cleanups.push(() => started.stop());
  return started;
}

async function petrel(milters: readonly MilterEntry[]): Promise<TestServer> {
  const dir = tempDir();
  cleanups.push(() => dir.remove());
  const users = await writeUsers(dir.path, { 'alice@petrel.test': 'alice password' });
  const server = await startTestServer({
    server: { hostname: 'mx.petrel.test', localDomains: ['petrel.test'] },
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }],
    plugins: [
      { name: 'auth-file', options: { file: users } },
      { name: 'milter', options: { milters: milters.map((entry, i) => ({ name: entry.name ?? `m${i + 1}`, timeout: '5s', ...entry })) } },
      { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
      { name: 'queue-spool' },
    ],
  });
  cleanups.push(() => server.stop());
  return server;
}

async function queuedCount(server: TestServer, sender: string): Promise<number> {
  return (await server.petrel.queue.list({ sender })).length;
}

/** Waits until Petrel has closed its side of milter connection `n` (sessions end after the client's QUIT). */
async function closed(milter: ScriptedMilter, n = 0): Promise<void> {
  for (let i = 0; i < 400 && !milter.connections[n]?.closedByPetrel; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.ok(milter.connections[n]?.closedByPetrel, 'Petrel closed the milter connection');
}

describe('milter: steps and macros', () => {
  it('sends every step in order with its macros, then QUIT when the session ends', async () => {
    const m = await milter();
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    await client.command(plainAuth('alice@petrel.test', 'alice password'), /^235 /);
    const reply = await client.sendMail('alice@petrel.test', ['bob@petrel.test'], sampleMessage({ from: 'alice@petrel.test', subject: 'steps' }));
    assert.match(reply.raw, /^250 /);
    await client.quit();
    await closed(m);

    const received = m.connections[0].received;
    const codes = m.codes();
    assert.match(codes, /^OCHMRTL+NBEQ$/, 'negotiation, connect, helo, mail, rcpt, data, headers, end of headers, body, end of message, quit');
    const negotiation = received[0].data;
    assert.equal(negotiation.readUInt32BE(0), 6, 'protocol version 6');
    assert.equal(negotiation.readUInt32BE(4), ALL_ACTIONS, 'every action offered');
    const connect = received.find((r) => r.code === 'C')!;
    assert.equal(connect.strings[0], '[127.0.0.1]');
    assert.equal(connect.data[connect.strings[0].length + 1], '4'.charCodeAt(0), 'address family IPv4');
    assert.equal(connect.macros.j, 'mx.petrel.test');
    assert.equal(connect.macros['{daemon_name}'], 'mx');
    assert.equal(connect.macros['{client_addr}'], '127.0.0.1');
    assert.match(connect.macros['{client_port}'], /^\d+$/);
    assert.equal(connect.macros['{if_addr}'], '127.0.0.1');
    assert.equal(received.find((r) => r.code === 'H')!.strings[0], 'client.example.test');
    const mail = received.find((r) => r.code === 'M')!;
    assert.deepEqual(mail.strings, ['<alice@petrel.test>']);
    const queued = (await server.petrel.queue.list({ sender: 'alice@petrel.test' }))[0];
    assert.equal(mail.macros.i, queued.id, '{i} is the queue id');
    assert.equal(mail.macros['{auth_authen}'], 'alice@petrel.test');
    assert.equal(mail.macros['{auth_type}'], 'PLAIN');
    assert.equal(mail.macros['{mail_addr}'], 'alice@petrel.test');
    const rcpt = received.find((r) => r.code === 'R')!;
    assert.deepEqual(rcpt.strings, ['<bob@petrel.test>']);
    assert.equal(rcpt.macros['{rcpt_addr}'], 'bob@petrel.test');
    const headers = received.filter((r) => r.code === 'L').map((r) => r.strings);
    assert.equal(headers[0][0], 'Received', "Petrel's own Received field comes first");
    assert.ok(headers.some(([name, value]) => name === 'Subject' && value === 'steps'), 'values without the space after the colon');
    assert.equal(received.find((r) => r.code === 'E')!.macros.i, queued.id);
    assert.equal(received.find((r) => r.code === 'B')!.data.toString(), 'Hello from the Petrel test suite.\r\n');
  });

  it('reaches a milter on a Unix socket', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const m = await ScriptedMilter.start({ answer: (r) => (r.code === 'E' ? [says.addHeader('X-Over-Unix', 'yes'), says.continue()] : undefined) }, `${dir.path}/milter.sock`);
    cleanups.push(() => m.stop());
    assert.match(m.socket, /^unix:\/.*milter\.sock$/);
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    assert.ok(headerFields(await queuedMessageFrom(server, 'a@example.org')).includes('X-Over-Unix: yes'));
  });

  it('sends only the macros a milter asked for with setsymlist', async () => {
    const m = await milter({ macroLists: [[2, '{client_addr} i'], [0, 'j']] });
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    const received = m.connections[0].received;
    assert.deepEqual(Object.keys(received.find((r) => r.code === 'C')!.macros), ['j']);
    assert.deepEqual(Object.keys(received.find((r) => r.code === 'M')!.macros).sort(), ['i', '{client_addr}']);
  });

  it('leaves out the steps the milter does not want and waits for no reply where it said it gives none', async () => {
    const m = await milter({ protocol: SMFIP.NOHELO | SMFIP.NORCPT | SMFIP.NOHDRS | SMFIP.NODATA | SMFIP.NR_CONN | SMFIP.NR_MAIL | SMFIP.NR_EOH | SMFIP.NR_BODY });
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    await closed(m);
    assert.equal(m.codes(), 'OCMNBEQ');
    assert.equal(await queuedCount(server, 'a@example.org'), 1);
  });

  it('sends a large body in chunks of at most 65535 bytes, and stops when the milter says skip', async () => {
    const body = `${'0123456789abcdef'.repeat(64).match(/.{1,62}/g)!.join('\r\n')}\r\n`.repeat(150);
    const all = await milter();
    const skipping = await milter({ protocol: SMFIP.SKIP, answer: (r) => (r.code === 'B' ? [says.skip()] : undefined) });
    const server = await petrel([{ socket: all.socket }, { socket: skipping.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage({ body }))).raw, /^250 /);
    await client.quit();
    const chunks = all.connections[0].received.filter((r) => r.code === 'B').map((r) => r.data);
    assert.ok(chunks.length >= 3);
    assert.ok(chunks.every((chunk) => chunk.length <= 65535));
    const sent = Buffer.concat(chunks).toString();
    assert.equal(sent.length, body.length + 2);
    assert.ok(sent === `${body}\r\n`, 'the chunks are the body, in order');
    assert.match(skipping.codes(), /LNBE/, 'one body chunk, then the end of the message');
  });
});

describe('milter: answers', () => {
  it('reject, tempfail and a reply code of its own at MAIL and RCPT; RCPT refusals are per recipient', async () => {
    const m = await milter({
      answer: (r) => {
        if (r.code === 'M' && r.strings[0] === '<spam@example.org>') return [says.reject()];
        if (r.code === 'M' && r.strings[0] === '<later@example.org>') return [says.tempfail()];
        if (r.code === 'R' && r.strings[0] === '<gone@petrel.test>') return [says.replyCode('553 5.1.3 No such mailbox here')];
        if (r.code === 'R' && r.strings[0] === '<busy@petrel.test>') return [says.tempfail()];
        return undefined;
      },
    });
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    assert.equal((await client.command('MAIL FROM:<spam@example.org>', /^550 /)).raw, '550 5.7.1 Command rejected');
    assert.equal((await client.command('MAIL FROM:<later@example.org>', /^451 /)).raw, '451 4.7.1 Service unavailable - try again later');
    await client.command('MAIL FROM:<ok@example.org>');
    assert.equal((await client.command('RCPT TO:<gone@petrel.test>', /^553 /)).raw, '553 5.1.3 No such mailbox here');
    assert.equal((await client.command('RCPT TO:<busy@petrel.test>', /^451 /)).raw, '451 4.7.1 Service unavailable - try again later');
    await client.command('RCPT TO:<bob@petrel.test>');
    await client.command('DATA', /^354 /);
    client.write(`${sampleMessage()}.\r\n`);
    assert.match((await client.reply()).raw, /^250 /);
    await client.quit();
    const queued = await server.petrel.queue.list({ sender: 'ok@example.org' });
    assert.deepEqual(queued[0].recipients.map((r) => r.address), ['bob@petrel.test']);
    assert.match(m.codes(), /^OCHMAMAMRRRT/, 'an ABORT before each new MAIL once a message was begun');
  });

  it('rejects at connect with 554, and a multi-line reply code at the end of the message', async () => {
    const atConnect = await milter({ answer: (r) => (r.code === 'C' ? [says.reject()] : undefined) });
    const refusing = await petrel([{ socket: atConnect.socket }]);
    const refused = await SmtpTestClient.connect(refusing.port());
    assert.match((await refused.reply()).raw, /^554 5\.7\.1 /);
    refused.close();

    const atEnd = await milter({ answer: (r) => (r.code === 'E' ? [says.replyCode('550-5.7.1 This message is refused\r\n550 5.7.1 for policy reasons')] : undefined) });
    const server = await petrel([{ socket: atEnd.socket }]);
    const client = await server.client();
    const reply = await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage());
    assert.equal(reply.raw.split('\r\n').at(-1), '550 5.7.1 This message is refused for policy reasons');
    await client.quit();
    assert.equal(await queuedCount(server, 'a@example.org'), 0);
  });

  it('accept at MAIL leaves the rest of that message out; accept at connect leaves the milter out of the session', async () => {
    const perMessage = await milter({ answer: (r) => (r.code === 'M' ? [says.accept()] : undefined) });
    const perSession = await milter({ answer: (r) => (r.code === 'C' ? [says.accept()] : undefined) });
    const server = await petrel([{ socket: perMessage.socket }, { socket: perSession.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    assert.match((await client.sendMail('b@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    await closed(perMessage);
    assert.equal(perMessage.codes(), 'OCHMAMAQ', 'MAIL only; ABORT for the unfinished message before the next one and at the end');
    assert.equal(perSession.codes(), 'OCQ');
    assert.equal(await queuedCount(server, 'a@example.org'), 1);
    assert.equal(await queuedCount(server, 'b@example.org'), 1);
  });

  it('discard at the end of the message answers 250 and queues nothing; discard at RCPT drops the message too', async () => {
    const atEnd = await milter({ answer: (r) => (r.code === 'E' ? [says.discard()] : undefined) });
    const atRcpt = await milter({ answer: (r) => (r.code === 'R' && r.strings[0] === '<trap@petrel.test>' ? [says.discard()] : undefined) });
    const server = await petrel([{ socket: atRcpt.socket }, { socket: atEnd.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('trapped@example.org', ['trap@petrel.test'], sampleMessage())).raw, /^250 /);
    assert.match(atEnd.codes(), /^OCHM/);
    assert.doesNotMatch(atEnd.codes(), /E/, 'a message discarded at RCPT goes to no later milter');
    assert.match((await client.sendMail('dropped@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    assert.equal(await queuedCount(server, 'trapped@example.org'), 0);
    assert.equal(await queuedCount(server, 'dropped@example.org'), 0);
    assert.ok(server.logs.lines.some((line) => line.msg === 'message discarded by a milter'));
  });
  it('discard at connect drops every message of the session, each with its 250', async () => {
    const m = await milter({ answer: (r) => (r.code === 'C' ? [says.discard()] : undefined) });
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('first@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    assert.match((await client.sendMail('second@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    assert.equal(await queuedCount(server, 'first@example.org'), 0);
    assert.equal(await queuedCount(server, 'second@example.org'), 0);
  });
});

describe('milter: changes at the end of the message', () => {
  it('applies every change once, in order: headers, sender, recipients, body, quarantine; progress keeps the milter alive', async () => {
    const m = await milter({
      answer: (r) =>
        r.code === 'E'
          ? [
              says.addHeader('X-Added', 'at the bottom'),
              says.insertHeader(0, 'X-Inserted', 'on top'),
              says.changeHeader(1, 'Subject', 'changed subject'),
              says.changeHeader(2, 'X-Twice', ''),
              says.changeSender('<new-sender@petrel.test>'),
              says.addRecipient('<carol@petrel.test>'),
              says.addRecipientWithArgs('<dave@petrel.test>', 'NOTIFY=NEVER'),
              says.deleteRecipient('<bob@petrel.test>'),
              says.progress(),
              says.replaceBody('The new body\nin two lines\n'),
              says.quarantine('looks like spam'),
              says.continue(),
            ]
          : undefined,
    });
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    const message = ['From: alice@example.org', 'To: bob@petrel.test', 'Subject: original', 'X-Twice: one', 'X-Twice: two', '', 'The old body', ''].join('\r\n');
    assert.match((await client.sendMail('alice@example.org', ['bob@petrel.test'], message)).raw, /^250 /);
    await client.quit();

    const records = await server.petrel.queue.list({ sender: 'new-sender@petrel.test' });
    assert.equal(records.length, 1, 'queued once, with the new sender');
    assert.deepEqual(records[0].recipients.map((r) => [r.address, r.notify]), [['carol@petrel.test', undefined], ['dave@petrel.test', ['NEVER']]]);
    const queued = await queuedMessageFrom(server, 'new-sender@petrel.test');
    const fields = headerFields(queued);
    assert.equal(fields[0], 'X-Petrel-Quarantine: milter/m1: looks like spam');
    assert.equal(fields[1], 'X-Petrel-Filter: milter/m1=pass (action=addHeader,insertHeader,changeHeader,changeSender,addRecipient,deleteRecipient,replaceBody,quarantine)');
    assert.equal(fields[2], 'X-Inserted: on top');
    assert.equal(fields.filter((f) => f === 'X-Added: at the bottom').length, 1);
    assert.equal(fields.at(-1), 'X-Added: at the bottom');
    assert.deepEqual(fields.filter((f) => f.startsWith('Subject:')), ['Subject: changed subject']);
    assert.deepEqual(fields.filter((f) => f.startsWith('X-Twice:')), ['X-Twice: one']);
    assert.equal(queued.slice(queued.indexOf('\r\n\r\n') + 4), 'The new body\r\nin two lines\r\n');
  });

  it('progress messages restart the timeout: an answer later than the timeout, after progress, still counts', async () => {
    // Progress every 400 ms for 1.6 s, then the verdict; the timeout is 1 s.
    const later = [400, 800, 1200, 1600].map((afterMs) => ({ afterMs, packet: says.progress() }));
    const m = await milter({ answer: (r) => (r.code === 'E' ? { timed: [...later, { afterMs: 2000, packet: says.addHeader('X-Patient', 'yes') }, { afterMs: 2000, packet: says.continue() }] } : undefined) });
    const server = await petrel([{ socket: m.socket, timeout: '1s' }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    assert.ok(headerFields(await queuedMessageFrom(server, 'a@example.org')).includes('X-Patient: yes'));
  });

  it('two milters run in config order, and the second sees the first one\'s changes', async () => {
    const first = await milter({ answer: (r) => (r.code === 'E' ? [says.addHeader('X-First', 'one'), says.continue()] : undefined) });
    const second = await milter({ answer: (r) => (r.code === 'E' ? [says.addHeader('X-Second', 'two'), says.continue()] : r.code === 'M' && r.strings[0] === '<no@example.org>' ? [says.reject()] : undefined) });
    const server = await petrel([{ socket: first.socket }, { socket: second.socket }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.command('MAIL FROM:<no@example.org>', /^550 /);
    await client.quit();
    const fields = headerFields(await queuedMessageFrom(server, 'a@example.org'));
    assert.deepEqual(fields.slice(-2), ['X-First: one', 'X-Second: two']);
    assert.ok(second.connections[0].received.some((r) => r.code === 'L' && r.strings[0] === 'X-First'), 'the second milter got the first one\'s header');
    assert.ok(first.connections[0].received.filter((r) => r.code === 'M').length === 2, 'the first milter saw both MAILs before the second refused one');
  });
});

describe('milter: failures and defaultAction', () => {
  it('a milter that cannot be reached: tempfail refuses the connection with 451, accept skips it, reject refuses with 554', async () => {
    const gone = await milter();
    const socket = gone.socket;
    await gone.stop();
    const tempfail = await petrel([{ socket, defaultAction: 'tempfail' }]);
    const deferred = await SmtpTestClient.connect(tempfail.port());
    assert.equal((await deferred.reply()).raw, '451 4.7.1 Service unavailable - try again later');
    deferred.close();
    assert.ok(tempfail.logs.lines.some((line) => line.level === 'warn' && /milter m1 cannot connect/.test(String(line.msg))), 'a warning names the milter');

    const accepting = await petrel([{ socket, defaultAction: 'accept' }]);
    const client = await accepting.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();

    const rejecting = await petrel([{ socket, defaultAction: 'reject' }]);
    const refused = await SmtpTestClient.connect(rejecting.port());
    assert.match((await refused.reply()).raw, /^554 5\.7\.1 /);
    refused.close();
  });

  for (const [failure, answer] of [
    ['times out', 'silence'],
    ['closes the connection', 'close'],
    ['sends garbage (a packet of length 0)', { raw: Buffer.alloc(4) }],
    ['sends a packet over the size limit', { raw: Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x63]) }],
    ['sends an unknown answer', { raw: packet('Z') }],
    ['sends a verdict followed by data it never carries', { raw: packet('a', Buffer.from('extra')) }],
    ['sends a reply code without its NUL', { raw: packet('y', Buffer.from('550 5.7.1 cut short')) }],
    ['answers with a 2xx reply code', [says.replyCode('250 2.0.0 fine')]],
    ['answers with an enhanced code of the wrong class', [says.replyCode('550 4.7.1 mixed')]],
  ] as const) {
    it(`a milter that ${failure} at RCPT: tempfail 451 for the rest of the session, accept skips it, reject 550`, async () => {
      const script: MilterScript = { answer: (r) => (r.code === 'R' ? (answer as ReturnType<NonNullable<MilterScript['answer']>>) : undefined) };
      const m = await milter(script);
      const server = await petrel([
        { name: 'temp', socket: m.socket, timeout: '500ms', defaultAction: 'tempfail' },
      ]);
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      assert.equal((await client.command('RCPT TO:<bob@petrel.test>', /^451 /)).raw, '451 4.7.1 Service unavailable - try again later');
      assert.equal((await client.command('RCPT TO:<carol@petrel.test>', /^451 /)).raw, '451 4.7.1 Service unavailable - try again later', 'the milter stays failed');
      await client.quit();
      assert.ok(server.logs.lines.some((line) => line.level === 'warn' && line.milter === 'temp'));

      const skipped = await milter(script);
      const accepting = await petrel([{ socket: skipped.socket, timeout: '500ms', defaultAction: 'accept' }]);
      const passing = await accepting.client();
      assert.match((await passing.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
      await passing.quit();
      assert.equal(await queuedCount(accepting, 'a@example.org'), 1);
      assert.doesNotMatch(skipped.codes(), /[LE]/, 'the failed milter is not asked again');

      const refusing = await milter(script);
      const rejecting = await petrel([{ socket: refusing.socket, timeout: '500ms', defaultAction: 'reject' }]);
      const refused = await rejecting.client();
      await refused.command('MAIL FROM:<a@example.org>');
      assert.equal((await refused.command('RCPT TO:<bob@petrel.test>', /^550 /)).raw, '550 5.7.1 Command rejected');
      await refused.quit();
    });
  }

  it('nothing a milter sends crashes Petrel: 40 answers of arbitrary bytes at the end of the message each give 451, and the server goes on', async () => {
    // A fixed pseudo-random sequence (same bytes on every run): well-framed packets of
    // random letters and data, truncated packets, and raw noise.
    let seed = 0x5eed;
    const random = (below: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % below;
    };
    const bytes = (length: number) => Buffer.from(Array.from({ length }, () => random(256)));
    const payloads = Array.from({ length: 40 }, (_, i) => {
      if (i % 3 === 0) return { raw: bytes(1 + random(64)) };
      const letter = String.fromCharCode(random(256));
      const framed = packet(letter, bytes(random(40)));
      return i % 3 === 1 ? { raw: Buffer.concat([framed, Buffer.from('c')]) } : { raw: framed.subarray(0, 1 + random(framed.length)) };
    });
    let next = 0;
    const m = await milter({ answer: (r) => (r.code === 'E' ? payloads[next++] : undefined) });
    const server = await petrel([{ socket: m.socket, timeout: '300ms' }]);
    for (let i = 0; i < payloads.length; i++) {
      const client = await server.client();
      const reply = await client.sendMail(`fuzz${i}@example.org`, ['bob@petrel.test'], sampleMessage());
      assert.match(reply.raw, /^(451 4\.7\.1|250|5\d\d|4\d\d) /, `payload ${i}`);
      await client.quit();
    }
    const after = await server.client();
    assert.match((await after.command('NOOP')).raw, /^250 /, 'the server still answers');
    await after.quit();
  });

  it('a change the milter did not negotiate fails it; nothing of it is applied', async () => {
    const m = await milter({ actions: 0x01, answer: (r) => (r.code === 'E' ? [says.addHeader('X-Allowed', 'yes'), says.deleteRecipient('<bob@petrel.test>'), says.continue()] : undefined) });
    const server = await petrel([{ socket: m.socket }]);
    const client = await server.client();
    assert.equal((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, '451 4.7.1 Service unavailable - try again later');
    await client.quit();
    assert.equal(await queuedCount(server, 'a@example.org'), 0);
  });

  it('a milter that fails at the end of the message with defaultAction accept lets the message through unchanged', async () => {
    const m = await milter({ answer: (r) => (r.code === 'E' ? [says.addHeader('X-Half', 'done'), packet('Z')] : undefined) });
    const server = await petrel([{ socket: m.socket, defaultAction: 'accept' }]);
    const client = await server.client();
    assert.match((await client.sendMail('a@example.org', ['bob@petrel.test'], sampleMessage())).raw, /^250 /);
    await client.quit();
    const fields = headerFields(await queuedMessageFrom(server, 'a@example.org'));
    assert.ok(!fields.some((field) => field.startsWith('X-Half')));
    assert.ok(fields.includes('X-Petrel-Filter: milter/m1=unscanned (not scanned: sent an unknown answer "Z")'), fields.join('\n'));
    const accepted = server.logs.lines.find((line) => line.msg === 'message accepted');
    assert.deepEqual(accepted?.scans, ['milter/m1=unscanned (not scanned: sent an unknown answer "Z")'], 'the verdict is on the log line');
  });
});
