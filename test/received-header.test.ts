import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { protocolName } from '../core/smtp/received-header.js';
import { plainAuth } from './fixtures/auth.js';
import { fixturePlugin } from './fixtures/paths.js';
import { testCertificate } from './harness/certificates.js';
import { dotStuff, sampleMessage, type SmtpTestClient } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * The Received field the core writes (RFC 5321 4.4), read back from the
 * queue after a real SMTP session: whatever the client says in HELO, the
 * field keeps its grammar; IPv6 clients are address literals; SMTPUTF8
 * transactions carry the RFC 6531 protocol names.
 */

let server: TestServer;
before(async () => {
  const certificate = testCertificate('mx.petrel.test');
  server = await startTestServer({
    tls: { cert: certificate.certFile, key: certificate.keyFile },
    listeners: [
      { name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', xclient: ['127.0.0.1'] },
      { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls', auth: true, insecureAuth: true },
    ],
    plugins: [{ path: fixturePlugin('auth-static'), options: { users: { 'a@example.org': 'secret' } } }, { name: 'relay-access' }, { name: 'queue-spool' }],
  });
});
after(() => server.stop());

/** Sends one message in an open session and returns the Received field the queue holds, unfolded to one line. */
async function receivedOf(client: SmtpTestClient, mail = 'MAIL FROM:<a@example.org>'): Promise<string> {
  await client.command(mail);
  await client.command('RCPT TO:<postmaster@localhost>');
  await client.command('DATA', /^354 /);
  client.write(`${dotStuff(sampleMessage())}.\r\n`);
  const id = /queued as (\S+)/.exec((await client.expect(/^250 /)).raw)![1];
  await client.quit();
  const chunks: Buffer[] = [];
  for await (const chunk of await server.petrel.queue.read(id)) chunks.push(chunk as Buffer);
  const field = /^Received: [^]*?(?=\r\n\S)/.exec(Buffer.concat(chunks).toString())![0];
  return field.replace(/\r\n\t/g, ' ');
}

describe('the Received field', () => {
  it('writes a HELO name that is no domain as an escaped comment, so the grammar holds', async () => {
    for (const [helo, comment] of [
      ['x)(y.example', 'helo=x\\)\\(y.example'],
      ['a;b.example', 'helo=a;b.example'],
      ['back\\slash', 'helo=back\\\\slash'],
    ]) {
      const received = await receivedOf(await server.client('mx', { ehlo: helo }));
      assert.match(received, /^Received: from \[127\.0\.0\.1\] \(/, helo);
      assert.ok(received.startsWith(`Received: from [127.0.0.1] (unknown [127.0.0.1] ${comment}) by mx.petrel.test `), received);
      // Everything up to the date is one balanced set of comments, and the only ';' outside them ends the tokens.
      const outside = received.replace(/\((?:\\.|[^()\\])*\)/g, '');
      assert.doesNotMatch(outside, /[()]/, received);
      assert.equal(outside.split(';').length, 2, received);
    }
  });

  it('keeps a HELO name that is a domain or an address literal as it is', async () => {
    assert.match(await receivedOf(await server.client('mx', { ehlo: 'Client.Example.Test' })), /^Received: from Client\.Example\.Test \(unknown \[127\.0\.0\.1\]\) /);
    assert.match(await receivedOf(await server.client('mx', { ehlo: '[127.0.0.1]' })), /^Received: from \[127\.0\.0\.1\] \(unknown \[127\.0\.0\.1\]\) /);
    assert.match(await receivedOf(await server.client('mx', { ehlo: 'bücher.example' })), /^Received: from xn--bcher-kva\.example \(/, 'an IDN as its A-label');
  });

  it('writes an IPv6 client as an IPv6 address literal', async () => {
    const client = await server.client('mx');
    await client.command('XCLIENT ADDR=IPV6:fd00::7', /^220 /);
    await client.command('EHLO client.example.test', /^250 /);
    assert.match(await receivedOf(client), /^Received: from client\.example\.test \(unknown \[IPv6:fd00::7\]\) /);
  });

  it('names SMTPUTF8 transactions UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA (RFC 6531 3.7.3)', async () => {
    assert.match(await receivedOf(await server.client('mx'), 'MAIL FROM:<a@example.org> SMTPUTF8'), / with UTF8SMTP id /);
    assert.match(await receivedOf(await server.client('mx')), / with ESMTP id /, 'without SMTPUTF8, ESMTP');

    const secure = await server.client('submission');
    await secure.startTls();
    await secure.command('EHLO client.example.test');
    assert.match(await receivedOf(secure, 'MAIL FROM:<a@example.org> SMTPUTF8'), / with UTF8SMTPS id /);

    const authenticated = await server.client('submission');
    await authenticated.command(plainAuth('a@example.org', 'secret'), /^235 /);
    assert.match(await receivedOf(authenticated, 'MAIL FROM:<a@example.org> SMTPUTF8'), / with UTF8SMTPA id /);

    const both = await server.client('submission');
    await both.startTls();
    await both.command('EHLO client.example.test');
    await both.command(plainAuth('a@example.org', 'secret'), /^235 /);
    assert.match(await receivedOf(both, 'MAIL FROM:<a@example.org> SMTPUTF8'), / with UTF8SMTPSA id /);
  });

  it('maps every ESMTP protocol name, and leaves plain SMTP alone', () => {
    assert.deepEqual(
      ['ESMTP', 'ESMTPS', 'ESMTPA', 'ESMTPSA', 'SMTP'].map((name) => protocolName(name, true)),
      ['UTF8SMTP', 'UTF8SMTPS', 'UTF8SMTPA', 'UTF8SMTPSA', 'SMTP'],
    );
  });
});
