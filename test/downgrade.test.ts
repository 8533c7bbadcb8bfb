import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authenticate } from 'mailauth';
import { Headers } from 'mailsplit';
import { dkimRecordName, dkimRecordValue } from '../plugins/dkim-sign/dkim-record.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import { deliveryStatus, parseMime, type ParsedMessage } from './harness/mime-parts.js';
import { MxWorld } from './harness/mx-world.js';
import type { SinkMessage, SinkServer } from './harness/sink-server.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * Downgrades for next hops that lack an extension the message needs, end to
 * end through relay-mx: an 8-bit message to an MX without 8BITMIME goes out
 * converted to 7-bit MIME (RFC 6152 3), signed by dkim-sign after the
 * conversion; what cannot be converted, and an SMTPUTF8 message to an MX
 * without SMTPUTF8 (RFC 6531 3.2), bounces. "Old" MX hosts are sinks that
 * hide 8BITMIME and SMTPUTF8; what they receive is parsed with mailsplit and
 * verified with mailauth.
 */

const SENDER = 'sender@origin.test';

const TEXT = `Grüße aus Zürich — naïve café, 日本語.\r\nA line with a trailing space \r\n${'ü'.repeat(300)}\r\n.starts with a dot`;
const HTML = '<p>Grüße, <b>café</b></p>';
const BINARY = Buffer.from(Array.from({ length: 512 }, (_unused, i) => 0x80 + (i % 128)));
const LATIN1 = Buffer.from('Caf\u00e9 in Latin-1, na\u00efve.', 'latin1');

/** A message with 8-bit parts of every kind: text, HTML, an 8bit-labelled attachment, a forwarded Latin-1 message, and a 7-bit part. */
function eightBitMessage(subject: string): Buffer {
  const text = (value: string) => Buffer.from(value, 'utf8');
  return Buffer.concat([
    text(
      [
        'From: Alice <alice@petrel.test>',
        'To: Bob <bob@old.test>, Carol <carol@new.test>',
        `Subject: ${subject}`,
        'Date: Sat, 28 Nov 2026 18:00:00 +0000',
        'Message-ID: <eight-bit@petrel.test>',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="outer"',
        '',
        'This is a MIME message.',
        '--outer',
        'Content-Type: multipart/alternative; boundary="alt"',
        'Content-Transfer-Encoding: 8bit',
        '',
        '--alt',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        TEXT,
        '--alt',
        'Content-Type: text/html; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        HTML,
        '--alt--',
        '--outer',
        'Content-Type: application/octet-stream; name="data.bin"',
        'Content-Transfer-Encoding: 8bit',
        'Content-Disposition: attachment; filename="data.bin"',
        '',
        '',
      ].join('\r\n'),
    ),
    BINARY,
    text(
      [
        '',
        '--outer',
        'Content-Type: message/rfc822',
        'Content-Disposition: attachment; filename="forwarded.eml"',
        'Content-Transfer-Encoding: 8bit',
        '',
        'From: carol@example.org',
        'Subject: forwarded',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=iso-8859-1',
        'Content-Transfer-Encoding: 8bit',
        '',
        '',
      ].join('\r\n'),
    ),
    LATIN1,
    text(['', '--outer', 'Content-Type: text/plain; charset=us-ascii', '', 'plain ascii part stays as it is', '--outer--', ''].join('\r\n')),
  ]);
}

/** A message without any MIME header whose body is 8-bit (a script's `mail`). */
function nonMimeMessage(subject: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`From: alice@petrel.test\r\nTo: bob@old.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@petrel.test>\r\n\r\n`), body, Buffer.from('\r\n')]);
}

let made: MxWorld;
let origin: SinkServer;
let old: SinkServer;
let modern: SinkServer;
let server: TestServer;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  made = new MxWorld();
  cleanups.push(() => made.close());
  origin = await made.host('mx.origin.test');
  made.domain('origin.test', [['mx.origin.test', 10]]);
  old = await made.host('mx.old.test', { hide8BitMime: true, hideSmtpUtf8: true });
  made.domain('old.test', [['mx.old.test', 10]]);
  modern = await made.host('mx.new.test');
  made.domain('new.test', [['mx.new.test', 10]]);

  const dir = tempDir();
  cleanups.push(async () => dir.remove());
  const keys = (['ed25519', 'rsa'] as const).map((type) => {
    const { privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
    const keyFile = join(dir.path, `${type}.key`);
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    made.dns.set(dkimRecordName('petrel.test', type), { TXT: [[dkimRecordValue(createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })))]] });
    return { domain: 'petrel.test', selector: type, keyFile };
  });
  server = await startTestServer(
    {
      delivery: { retry: ['1h'], delayWarningAfter: 0, idlePoll: '1s' },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        // simple body canonicalization: any byte of the body changed after signing fails verification.
        { name: 'dkim-sign', options: { keys, canonicalization: 'relaxed/simple', origins: { networks: ['127.0.0.0/8'] } } },
        { name: 'relay-mx', options: made.relayMxOptions() },
      ],
    },
    { dns: made.dns },
  );
  cleanups.push(() => server.stop());
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function send(to: readonly string[], message: Buffer, mailArgs = 'BODY=8BITMIME'): Promise<void> {
  const client = await server.client();
  await client.command(`MAIL FROM:<${SENDER}> ${mailArgs}`);
  for (const rcpt of to) await client.command(`RCPT TO:<${rcpt}>`);
  await client.command('DATA', /^354 /);
  // Dot-stuffing (RFC 5321 4.5.2), on bytes: the message is not all UTF-8.
  client.write(Buffer.from(message.toString('latin1').replace(/\r\n\./g, '\r\n..'), 'latin1'));
  await client.command('.', /^250 /);
  await client.quit();
}

/** The Subject of a message (mailsplit reads raw 8-bit header bytes as Latin-1). */
function subjectOf(message: Buffer): string {
  const end = message.indexOf('\r\n\r\n');
  return new Headers(end < 0 ? message : message.subarray(0, end + 4)).getFirst('subject');
}

async function receivedBy(sink: SinkServer, subject: string): Promise<SinkMessage> {
  const find = () => sink.messages.find((m) => subjectOf(m.data) === subject);
  await sink.waitUntil(() => find() !== undefined, 10_000, `a message with the subject "${subject}"`);
  return find()!;
}

/** The DSNs that came back to the sender about the message with this subject. */
function reportsAbout(subject: string): Promise<ParsedMessage[]> {
  const dsns = origin.messages.filter((m) => m.from === '' && m.to.includes(SENDER));
  return Promise.all(dsns.map((m) => parseMime(m.data))).then((parsed) =>
    parsed.filter((dsn) => dsn.parts.some((p) => ['text/rfc822-headers', 'message/rfc822'].includes(p.contentType) && subjectOf(p.decoded) === subject)),
  );
}

function waitForReports(subject: string): Promise<ParsedMessage[]> {
  return eventually(async () => {
    const found = await reportsAbout(subject);
    return found.length > 0 ? found : undefined;
  }, `a DSN about "${subject}" to reach the sender`);
}

async function dkimResults(message: SinkMessage): Promise<string[][]> {
  const { dkim } = await authenticate(message.data, {
    ip: '192.0.2.1',
    helo: 'mx.petrel.test',
    sender: SENDER,
    mta: 'mx.receiver.test',
    resolver: (name: string, type: string) => made.dns.resolve(name, type as 'TXT') as Promise<string[][]>,
    disableBimi: true,
  });
  return dkim.results.map((r) => [r.selector ?? '', r.status.result]);
}

function assertSevenBit(message: SinkMessage): void {
  assert.equal(message.bodyType, '7bit', 'no BODY=8BITMIME to a server that does not offer it');
  const eightBit = message.data.findIndex((byte) => byte >= 0x80);
  assert.equal(eightBit, -1, `no 8-bit byte on the wire (found one at ${eightBit})`);
  for (const line of message.data.toString('ascii').split('\r\n')) assert.ok(line.length <= 998, `no line longer than 998 (RFC 5322 2.1.1): ${line.length}`);
}

describe('downgrades for a next hop without 8BITMIME or SMTPUTF8', () => {
  it('converts an 8-bit message to 7-bit MIME that decodes to the same content, and signs it after the conversion', async () => {
    await send(['bob@old.test', 'carol@new.test'], eightBitMessage('eight bit parts'));
    const converted = await receivedBy(old, 'eight bit parts');
    assertSevenBit(converted);
    assert.doesNotMatch(converted.data.toString('ascii'), /^Content-Transfer-Encoding:\s*(8bit|binary)/im, 'every 8bit label is gone, containers included');

    const parsed = await parseMime(converted.data);
    assert.deepEqual(
      parsed.parts.map((p) => [p.contentType, p.encoding]),
      [
        ['text/plain', 'quoted-printable'],
        ['text/html', 'quoted-printable'],
        ['application/octet-stream', 'base64'],
        ['message/rfc822', '7bit'],
        ['text/plain', ''],
      ],
    );
    const [plain, html, attachment, forwarded, ascii] = parsed.parts;
    assert.equal(plain.decoded.toString('utf8'), TEXT);
    assert.equal(html.decoded.toString('utf8'), HTML);
    assert.deepEqual(attachment.decoded, BINARY);
    assert.equal(ascii.body, 'plain ascii part stays as it is');
    // RFC 2045 6.4: a message part is never encoded as a whole; the message inside it is converted.
    const inner = await parseMime(forwarded.decoded);
    assert.equal(new Headers(inner.headers).getFirst('subject'), 'forwarded');
    assert.deepEqual(inner.parts.map((p) => [p.contentType, p.encoding, p.charset]), [['text/plain', 'quoted-printable', 'iso-8859-1']]);
    assert.deepEqual(inner.parts[0].decoded, LATIN1);

    assert.deepEqual(await dkimResults(converted), [['ed25519', 'pass'], ['rsa', 'pass']], 'the signatures cover the converted message');

    // The same message to a server with 8BITMIME goes as it is.
    const unchanged = await receivedBy(modern, 'eight bit parts');
    assert.equal(unchanged.bodyType, '8bitmime');
    const asSent = await parseMime(unchanged.data);
    assert.deepEqual(asSent.parts.map((p) => p.encoding), ['8bit', '8bit', '8bit', '8bit', '']);
    assert.equal(asSent.parts[0].decoded.toString('utf8'), TEXT);
    assert.deepEqual(await dkimResults(unchanged), [['ed25519', 'pass'], ['rsa', 'pass']]);
  });

  it('gives a message without MIME headers MIME-Version, a charset and quoted-printable', async () => {
    const utf8 = Buffer.from('Grüße, plain 8-bit text without MIME headers.', 'utf8');
    await send(['bob@old.test'], nonMimeMessage('no mime utf8', utf8));
    await send(['bob@old.test'], nonMimeMessage('no mime latin1', LATIN1));
    for (const [subject, body, charset] of [['no mime utf8', utf8, 'utf-8'], ['no mime latin1', LATIN1, 'unknown-8bit']] as const) {
      const converted = await receivedBy(old, subject);
      assertSevenBit(converted);
      const parsed = await parseMime(converted.data);
      assert.equal(new Headers(parsed.headers).getFirst('mime-version'), '1.0');
      // A body of UTF-8 is labelled so; other bytes as RFC 1428's unknown-8bit, never guessed.
      assert.deepEqual(parsed.parts.map((p) => [p.contentType, p.charset, p.encoding]), [['text/plain', charset, 'quoted-printable']]);
      assert.deepEqual(parsed.parts[0].decoded, Buffer.concat([body, Buffer.from('\r\n')]));
      assert.deepEqual(await dkimResults(converted), [['ed25519', 'pass'], ['rsa', 'pass']]);
    }
  });

  it('bounces with 5.6.3 what cannot be converted (8-bit in a header without SMTPUTF8), sending nothing', async () => {
    const before = old.messages.length;
    await send(['bob@old.test'], nonMimeMessage('caf\u00e9 au lait', Buffer.from('body')));
    const subject = Buffer.from('caf\u00e9 au lait', 'utf8').toString('latin1'); // how mailsplit reads raw 8-bit header bytes
    const dsns = await waitForReports(subject);
    assert.equal(old.messages.length, before, 'nothing reached the old server');
    const [bob] = deliveryStatus(dsns[0]).recipients;
    assert.equal(bob.action, 'failed');
    assert.equal(bob.status, '5.6.3');
    assert.match(bob['diagnostic-code'], /^x-petrel; the next hop does not offer 8BITMIME and the message cannot be converted to 7-bit: 8-bit bytes in a header field/);
  });

  it('bounces an SMTPUTF8 message with 5.6.7 at a next hop without SMTPUTF8, and sends one that is ASCII after all', async () => {
    const before = old.messages.length;
    const utf8Header = Buffer.from('From: alice@petrel.test\r\nTo: bob@old.test\r\nSubject: Grüße\r\nMessage-ID: <utf8@petrel.test>\r\n\r\nHello.\r\n', 'utf8');
    await send(['bob@old.test', 'jürgen@old.test'], utf8Header, 'SMTPUTF8 BODY=8BITMIME');
    const dsns = await waitForReports(Buffer.from('Grüße', 'utf8').toString('latin1'));
    assert.equal(old.messages.length, before, 'nothing reached the old server');
    assert.deepEqual(
      deliveryStatus(dsns[0]).recipients.map((r) => [r['final-recipient'], r.action, r.status, r['remote-mta']]),
      [
        ['rfc822; bob@old.test', 'failed', '5.6.7', 'dns; mx.old.test'],
        ['rfc822; jürgen@old.test', 'failed', '5.6.7', 'dns; mx.old.test'],
      ],
    );

    await send(['bob@old.test'], nonMimeMessage('ascii after all', Buffer.from('Hello.')), 'SMTPUTF8');
    const delivered = await receivedBy(old, 'ascii after all');
    assert.equal(delivered.smtpUtf8, false);
    await queueEmpty(server);
  });
});

