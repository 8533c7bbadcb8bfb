import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('the DATA path', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      limits: { messageSize: '64KiB', recipients: 3 },
      plugins: [
        {
          path: fixturePlugin('scripted'),
          options: { addHeader: { name: 'X-Scanned', value: 'clean' }, removeHeader: 'X-Remove-Me' },
        },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
  });
  after(() => server.stop());

  it('advertises the ESMTP extensions an MTA is expected to have', async () => {
    const client = await server.client();
    const ehlo = await client.command('EHLO client.example', /^250 /);
    for (const extension of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN', `SIZE ${64 * 1024}`]) {
      assert.ok(ehlo.lines.includes(extension), `missing ${extension} in\n${ehlo.raw}`);
    }
    assert.ok(!ehlo.raw.includes('AUTH'), 'no AUTH on a listener without auth');
    await client.quit();
  });

  it('queues the message with the exact body, a Received header and plugin header edits, and answers with the queue id', async () => {
    const client = await server.client();
    const body = 'Line one\r\n.leading dot survives\r\n\r\n  indented\r\n';
    const message = `From: a@example.org\r\nX-Remove-Me: yes\r\nSubject: exact\r\n\r\n${body}`;
    const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], message);
    const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply.raw)?.[1];
    assert.ok(id, reply.raw);
    await client.quit();
    const queued = await server.petrel.queue.inspect(id);
    assert.equal(queued?.envelope.from, 'a@example.org');
    assert.deepEqual(queued?.recipients.map((r) => [r.address, r.status]), [['postmaster@localhost', 'pending']]);
    const content = await text(await server.petrel.queue.read(id));
    const [headers, ...rest] = content.split('\r\n\r\n');
    assert.equal(rest.join('\r\n\r\n'), body, 'body bytes are exactly what was sent (dot-unstuffed)');
    const names = headers.split('\r\n').filter((l) => !/^[ \t]/.test(l)).map((l) => l.split(':')[0]);
    assert.deepEqual(names, ['X-Scanned', 'Received', 'From', 'Subject'], 'added on top, removed gone, order kept');
    assert.match(headers, new RegExp(`by mx\\.petrel\\.test \\(Petrel\\) with ESMTP id ${id}`));
  });

  it('keeps DSN parameters from the envelope', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<a@example.org> RET=HDRS ENVID=abc123');
    await client.command('RCPT TO:<postmaster@localhost> NOTIFY=FAILURE,DELAY ORCPT=rfc822;postmaster@localhost');
    await client.command('DATA', /^354 /);
    client.write(`${sampleMessage()}.\r\n`);
    const reply = await client.expect(/^250 /);
    await client.quit();
    const id = reply.raw.split(' ').pop() as string;
    const queued = await server.petrel.queue.inspect(id);
    assert.deepEqual(queued?.envelope.dsn, { ret: 'HDRS', envid: 'abc123' });
    assert.deepEqual(queued?.recipients[0].notify, ['FAILURE', 'DELAY']);
    assert.equal(queued?.recipients[0].orcpt, 'rfc822;postmaster@localhost');
  });

  it('refuses a message over the size limit with 552 and queues nothing', async () => {
    const before = (await server.petrel.queue.list()).length;
    const client = await server.client();
    const big = sampleMessage({ body: 'x'.repeat(998) + '\r\n'.repeat(1) }).repeat(80);
    const reply = await client.sendMail('big@example.org', ['postmaster@localhost'], big);
    assert.match(reply.raw, /^552 5\.3\.4 /);
    await client.quit();
    assert.equal((await server.petrel.queue.list()).length, before);
  });

  it('refuses SIZE= above the limit at MAIL FROM', async () => {
    const client = await server.client();
    const reply = await client.command(`MAIL FROM:<a@example.org> SIZE=${10 * 1024 * 1024}`, /^552 /);
    assert.match(reply.raw, /^552 5\.3\.4 /);
    await client.quit();
  });

  it('a repeated RCPT TO is answered but delivered once, and does not get round the recipient limit', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<a@example.org>');
    for (let i = 0; i < 5; i++) await client.command('RCPT TO:<postmaster@localhost>', /^250 /);
    await client.command('RCPT TO:<PostMaster@localhost>', /^250 /);
    await client.command('DATA', /^354 /);
    client.write(`${sampleMessage({ subject: 'repeated rcpt' })}.\r\n`);
    const id = (await client.expect(/^250 /)).raw.split(' ').pop() as string;
    await client.quit();
    const queued = await server.petrel.queue.inspect(id);
    assert.deepEqual(queued?.recipients.map((r) => r.address), ['postmaster@localhost']);
  });

  it('limits recipients per message', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<a@example.org>');
    for (const n of [1, 2, 3]) await client.command(`RCPT TO:<user${n}@localhost>`);
    const reply = await client.command('RCPT TO:<user4@localhost>', /^452 /);
    assert.match(reply.raw, /^452 4\.5\.3 /);
    await client.quit();
  });

  for (const [name, payload] of [
    ['bare LF', 'Subject: x\r\n\r\nline one\nline two\r\n'],
    ['bare CR', 'Subject: x\r\n\r\nline one\rline two\r\n'],
    ['a smuggled second message (\\n.\\n)', 'Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n'],
    ['bare LF in the headers', 'Subject: x\nX-Other: y\r\n\r\nbody\r\n'],
  ] as const) {
    it(`rejects ${name} in DATA with 554 5.6.0 and queues nothing`, async () => {
      const before = (await server.petrel.queue.list()).length;
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      await client.command('RCPT TO:<postmaster@localhost>');
      await client.command('DATA', /^354 /);
      client.write(payload);
      client.write('.\r\n');
      const reply = await client.expect(/^554 /);
      assert.match(reply.raw, /^554 5\.6\.0 Message contains bare CR or LF/);
      await client.command('RSET', /^250 /);
      await client.quit();
      assert.equal((await server.petrel.queue.list()).length, before);
      const leftovers = await import('node:fs/promises').then((fs) => fs.readdir(join(server.dataDir, 'spool', 'incoming')));
      assert.deepEqual(leftovers, [], 'the refused message is not left in the spool');
    });
  }

  it('logs one line per accepted message with queue id, sender, recipients, size and message-id', async () => {
    const client = await server.client();
    const reply = await client.sendMail('logme@example.org', ['postmaster@localhost'], sampleMessage({ messageId: '<log-line@example.org>' }));
    await client.quit();
    const id = reply.raw.split(' ').pop();
    const [line] = server.logs.find({ msg: 'message accepted', qid: id });
    assert.equal(line.from, 'logme@example.org');
    assert.deepEqual(line.to, ['postmaster@localhost']);
    assert.equal(line.msgid, '<log-line@example.org>');
    assert.equal(typeof line.size, 'number');
    assert.equal(typeof line.sid, 'string');
  });

  it('stores one queue file per message as the spool plugin documents (bytes as received, then the record)', async () => {
    const client = await server.client();
    const reply = await client.sendMail('files@example.org', ['postmaster@localhost'], sampleMessage());
    await client.quit();
    const id = reply.raw.split(' ').pop() as string;
    const file = await readFile(join(server.dataDir, 'queue', 'messages', `${id}.msg`), 'utf8');
    assert.ok(file.startsWith('From: sender@example.org'), 'the .msg starts with the bytes as received');
    const offset = Number(file.slice(-20));
    const record = JSON.parse(file.slice(offset, -21));
    assert.equal(record.id, id);
    assert.equal(record.envelope.from, 'files@example.org');
    assert.equal(offset, record.size, 'the record follows the received bytes');
  });
});
