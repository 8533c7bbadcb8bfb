import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sendRequireTls, startTlsListener } from './fixtures/require-tls.js';
import { afterFirstAttempt } from './harness/eventually.js';
import { deliveryStatus, parseMime } from './harness/mime-parts.js';
import { SinkServer, type SinkOptions } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * deliver-lmtp against an LMTP sink (smtp-server in LMTP mode): one reply
 * per recipient after DATA, each honoured on its own.
 */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function lmtpServer(options: SinkOptions): Promise<SinkServer> {
  const sink = await SinkServer.start({ lmtp: true, ...options });
  cleanups.push(() => sink.close());
  return sink;
}

async function petrel(lmtp: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startTestServer({
    ...extra,
    server: { localDomains: ['mail.test'] },
    delivery: { retry: ['1h'], delayWarningAfter: 0 },
    plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }, { name: 'deliver-lmtp', options: lmtp }],
  });
  cleanups.push(() => server.stop());
  return server;
}

async function send(server: TestServer, to: string[]): Promise<string> {
  const client = await server.client();
  const reply = await client.sendMail('someone@example.org', to, sampleMessage({ to: to.join(', '), subject: 'for the mailboxes' }));
  await client.quit();
  return /queued as (\S+)/.exec(reply.raw)![1];
}

describe('deliver-lmtp', () => {
  it('honours the reply for each recipient after DATA: one delivered, one refused, one over quota', async () => {
    const sink = await lmtpServer({
      lmtpReply: (address) =>
        address.startsWith('ghost@') ? { code: 550, text: '5.1.1 <ghost@mail.test> User doesn\'t exist' } : address.startsWith('full@') ? { code: 452, text: '4.2.2 Mailbox full' } : undefined,
    });
    const server = await petrel({ host: '127.0.0.1', port: sink.port });
    const id = await send(server, ['alice@mail.test', 'ghost@mail.test', 'full@mail.test']);
    await sink.waitUntil((messages) => messages.length === 1);
    assert.deepEqual(sink.messages[0].to, ['alice@mail.test'], 'the sink kept the message for the accepted recipient only');
    assert.match(sink.messages[0].data.toString(), /^Subject: for the mailboxes/m);
    const message = await afterFirstAttempt(server, id);
    const byAddress = Object.fromEntries(message.recipients.map((r) => [r.address, r]));
    assert.equal(byAddress['alice@mail.test'].status, 'delivered');
    assert.equal(byAddress['ghost@mail.test'].status, 'bounced');
    assert.match(byAddress['ghost@mail.test'].lastReply ?? '', /^550 5\.1\.1 /);
    assert.equal(byAddress['full@mail.test'].status, 'deferred');
    assert.match(byAddress['full@mail.test'].lastReply ?? '', /^452 4\.2\.2 Mailbox full/);
  });

  it('reports a success as "delivered" when NOTIFY=SUCCESS, whatever the LMTP server offers: LMTP is final delivery', async () => {
    // The sink offers DSN; Petrel still sends the report (an LMTP server reports nothing later on) — to the same sink, the only target.
    const sink = await lmtpServer({});
    const server = await petrel({ host: '127.0.0.1', port: sink.port });
    const client = await server.client();
    await client.command('MAIL FROM:<someone@example.org>');
    await client.command('RCPT TO:<alice@mail.test> NOTIFY=SUCCESS ORCPT=rfc822;alice.original@mail.test');
    await client.command('DATA', /^354 /);
    client.write(sampleMessage({ to: 'alice@mail.test', subject: 'tell me when it arrives' }));
    await client.command('.', /^250 /);
    await client.quit();
    await sink.waitUntil((messages) => messages.some((m) => m.from === ''));
    assert.deepEqual(sink.messagesTo('alice@mail.test')[0].dsn['alice@mail.test'], { notify: ['SUCCESS'], orcpt: 'rfc822;alice.original@mail.test' }, 'ORCPT reaches the mailbox server');
    const report = sink.messages.find((m) => m.from === '')!;
    assert.deepEqual(report.to, ['someone@example.org']);
    const [alice] = deliveryStatus(await parseMime(report.data)).recipients;
    assert.deepEqual([alice['original-recipient'], alice.action, alice.status], ['rfc822; alice.original@mail.test', 'delivered', '2.0.0']);
  });

  it('talks to an LMTP server on a Unix socket', async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    const sink = await lmtpServer({ path: join(dir.path, 'lmtp') });
    const server = await petrel({ socket: join(dir.path, 'lmtp') });
    await send(server, ['bob@mail.test']);
    await sink.waitUntil((messages) => messages.length === 1);
    assert.deepEqual(sink.messages[0].to, ['bob@mail.test']);
  });

  it('delivers a REQUIRETLS message: LMTP is final delivery, not a relay hop that must offer REQUIRETLS', async () => {
    const sink = await lmtpServer({});
    const server = await petrel({ host: '127.0.0.1', port: sink.port }, startTlsListener());
    await sendRequireTls(server, 'someone@example.org', 'dora@mail.test');
    await sink.waitUntil((messages) => messages.length === 1);
    assert.deepEqual(sink.messages[0].to, ['dora@mail.test'], 'the message itself, not a bounce of it');
    assert.equal(sink.messages[0].requireTls, false);
  });

  it('defers everyone when the LMTP server is not there', async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    const server = await petrel({ socket: join(dir.path, 'missing') });
    const id = await send(server, ['carol@mail.test']);
    const message = await afterFirstAttempt(server, id);
    assert.equal(message.recipients[0].status, 'deferred');
    assert.match(message.recipients[0].lastReply ?? '', /^451 4\.4\.1 connect to .*missing failed: .*ENOENT/);
  });
});
