import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { testCertificate } from './harness/certificates.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const plainAuth = (user: string, password: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`;

describe('TLS and AUTH', () => {
  let server: TestServer;
  const main = testCertificate('mx.petrel.test');
  const other = testCertificate('other.petrel.test');

  before(async () => {
    server = await startTestServer({
      tls: { cert: main.certFile, key: main.keyFile, sni: [{ names: ['other.petrel.test'], cert: other.certFile, key: other.keyFile }] },
      listeners: [
        { name: 'mx', host: '127.0.0.1', port: 0, tls: 'starttls' },
        { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls-required', auth: true, submission: true },
        { name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit', auth: true, submission: true },
      ],
      plugins: [
        // Accepts AUTH for user/secret only; everything else is refused by the core default.
        { path: fixturePlugin('scripted'), options: { hooks: { auth: { result: 'accept', when: 'user' } } } },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
  });
  after(() => server.stop());

  it('STARTTLS upgrades the session with the configured certificate', async () => {
    const client = await server.client('mx');
    await client.startTls();
    const ehlo = await client.command('EHLO client.example', /^250 /);
    assert.ok(!ehlo.raw.includes('STARTTLS'), 'STARTTLS is not offered again inside TLS');
    const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
    assert.match(reply.raw, /^250 2\.0\.0 Ok: queued as /);
    await client.quit();
    const [message] = await server.petrel.queue.list({ sender: 'a@example.org' });
    assert.ok(message, 'the message is in the queue');
    const content = await streamText(await server.petrel.queue.read(message.id));
    assert.match(content, /^Received: from client\.example \(unknown \[127\.0\.0\.1\]\)\r\n\tby mx\.petrel\.test \(Petrel\) with ESMTPS id /);
    assert.match(content, /\(TLSv1\.[23] /);
  });

  it('SNI picks the certificate for the name the client asks for', async () => {
    const client = await server.client('mx');
    await client.startTls({ servername: 'other.petrel.test' });
    assert.equal(client.peerCertificateName(), 'other.petrel.test');
    await client.quit();
    assert.equal(await peerCertificate(server.port('smtps'), 'other.petrel.test'), 'other.petrel.test');
    assert.equal(await peerCertificate(server.port('smtps'), 'unknown.example'), 'mx.petrel.test', 'unknown names get the default certificate');
  });

  it('AUTH is not offered and not accepted before TLS', async () => {
    const client = await server.client('submission');
    const ehlo = await client.command('EHLO client.example', /^250 /);
    assert.ok(!/AUTH/.test(ehlo.raw), `AUTH must not be advertised in plaintext:\n${ehlo.raw}`);
    assert.ok(/STARTTLS/.test(ehlo.raw));
    const refused = await client.command(plainAuth('user', 'secret'), /^5\d\d /);
    assert.match(refused.raw, /^5\d\d 5\.\d\.\d+ /);
    await client.quit();
  });

  it('starttls-required refuses MAIL until TLS, and submission requires AUTH', async () => {
    const client = await server.client('submission');
    const beforeTls = await client.command('MAIL FROM:<user@localhost>', /^530 /);
    assert.equal(beforeTls.raw, '530 5.7.0 Must issue a STARTTLS command first');
    await client.startTls();
    const ehlo = await client.command('EHLO client.example', /^250 /);
    assert.match(ehlo.raw, /AUTH PLAIN LOGIN/);
    const noAuth = await client.command('MAIL FROM:<user@localhost>', /^530 /);
    assert.equal(noAuth.raw, '530 5.7.0 Authentication required');
    const bad = await client.command(plainAuth('mallory', 'guess'), /^535 /);
    assert.equal(bad.raw, '535 5.7.8 Authentication credentials invalid');
    await client.command(plainAuth('user', 'secret'), /^235 /);
    const reply = await client.sendMail('user@localhost', ['someone@elsewhere.example'], sampleMessage({ from: 'user@localhost' }));
    assert.match(reply.raw, /^250 2\.0\.0 /, 'an authenticated user may relay');
    await client.quit();
  });

  it('implicit TLS (port 465 style) speaks TLS from the first byte and offers AUTH', async () => {
    const client = await SmtpTestClient.connect(server.port('smtps'), { tls: {} });
    assert.ok(client.secure);
    await client.expect(/^220 /);
    const ehlo = await client.command('EHLO client.example', /^250 /);
    assert.match(ehlo.raw, /AUTH PLAIN LOGIN/);
    await client.command(plainAuth('user', 'secret'), /^235 /);
    await client.quit();
  });

  it('a plaintext client on the implicit TLS port gets no SMTP greeting', async () => {
    const client = await SmtpTestClient.connect(server.port('smtps'));
    await assert.rejects(client.reply(1500));
    client.close();
  });
});

describe('insecure AUTH', () => {
  it('is allowed without TLS only for loopback clients when insecureAuth is set', async () => {
    const server = await startTestServer({
      listeners: [{ name: 'dev', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }],
      plugins: [
        { path: fixturePlugin('scripted'), options: { hooks: { auth: { result: 'accept', when: 'user' } } } },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
    try {
      const client = await server.client('dev');
      await client.command(plainAuth('user', 'x'), /^235 /);
      await client.quit();
    } finally {
      await server.stop();
    }
  });
});

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function peerCertificate(port: number, servername: string): Promise<string> {
  const tls = await import('node:tls');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const subject = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(subject));
    });
    socket.once('error', reject);
  });
}
