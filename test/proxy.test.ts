import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { parseProxyHeader } from '../core/smtp/proxy-protocol.js';
import { testCertificate } from './harness/certificates.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

function v2Header(source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  const signature = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const v6 = source.includes(':');
  const address = (ip: string) =>
    v6 ? Buffer.from(expand(ip).map((group) => [parseInt(group, 16) >> 8, parseInt(group, 16) & 0xff]).flat()) : Buffer.from(ip.split('.').map(Number));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]); // a NOOP TLV the parser must skip
  const body = Buffer.concat([address(source), address(destination), ports, tlv]);
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([signature, head, body]);
}

function expand(ip: string): string[] {
  const [left, right = ''] = ip.split('::');
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  return [...l, ...Array(8 - l.length - r.length).fill('0'), ...r];
}

/** Sends `header` as the first bytes, then relays a message to an outside domain; returns the RCPT reply. */
async function relayThrough(server: TestServer, header: string | Buffer): Promise<{ rcpt: string; received?: string }> {
  const client = await SmtpTestClient.connect(server.port());
  client.write(header);
  await client.expect(/^220 /);
  await client.command('EHLO proxied.example', /^250 /);
  await client.command('MAIL FROM:<a@example.org>');
  client.send('RCPT TO:<someone@elsewhere.example>');
  const rcpt = await client.reply();
  let received: string | undefined;
  if (rcpt.code === 250) {
    await client.command('DATA', /^354 /);
    client.write(`${sampleMessage({ messageId: `<${Math.random()}@proxy.test>` })}.\r\n`);
    const id = (await client.expect(/^250 /)).raw.split(' ').pop() as string;
    const chunks: Buffer[] = [];
    for await (const chunk of await server.petrel.queue.read(id)) chunks.push(chunk as Buffer);
    received = Buffer.concat(chunks).toString().split('\r\n')[0];
  }
  await client.quit();
  return { rcpt: rcpt.raw, received };
}

describe('PROXY protocol from a trusted load balancer', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', proxyProtocol: ['127.0.0.0/8'] }],
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['192.0.2.0/24', '2001:db8::/32'] } }, { name: 'queue-spool' }],
    });
  });
  after(() => server.stop());

  it('v1: policy sees the client named in the header', async () => {
    const trusted = await relayThrough(server, 'PROXY TCP4 192.0.2.10 127.0.0.1 40000 25\r\n');
    assert.match(trusted.rcpt, /^250 /);
    assert.equal(trusted.received, 'Received: from proxied.example (unknown [192.0.2.10])');
    const outsider = await relayThrough(server, 'PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n');
    assert.match(outsider.rcpt, /^554 5\.7\.1 /);
  });

  it('v2 (binary, with a TLV), IPv4 and IPv6', async () => {
    const v4 = await relayThrough(server, v2Header('192.0.2.44', '10.0.0.1', 40001, 25));
    assert.equal(v4.received, 'Received: from proxied.example (unknown [192.0.2.44])');
    const v6 = await relayThrough(server, v2Header('2001:db8::5', '2001:db8::1', 40002, 25));
    assert.equal(v6.received, 'Received: from proxied.example (unknown [IPv6:2001:db8::5])');
    const outsider = await relayThrough(server, v2Header('2001:db9::5', '2001:db8::1', 40003, 25));
    assert.match(outsider.rcpt, /^554 5\.7\.1 /);
  });

  it('a trusted peer that sends no valid header is disconnected without a session', async () => {
    const client = await SmtpTestClient.connect(server.port());
    client.write('EHLO not-a-proxy.example\r\n');
    await client.waitForClose();
    assert.equal(client.transcript.some((line) => line.startsWith('S: 220')), false);
  });
});

describe('PROXY protocol from an untrusted peer', () => {
  it('is not honoured: the header is just an unknown command', async () => {
    const server = await startTestServer({
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', proxyProtocol: ['10.0.0.0/8'] }],
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['192.0.2.0/24'] } }, { name: 'queue-spool' }],
    });
    try {
      const client = await SmtpTestClient.connect(server.port());
      await client.expect(/^220 /);
      const reply = await client.command('PROXY TCP4 192.0.2.10 127.0.0.1 40000 25', /^5\d\d /);
      assert.match(reply.raw, /^500 /);
      await client.command('EHLO x.example', /^250 /);
      await client.command('MAIL FROM:<a@example.org>');
      await client.command('RCPT TO:<someone@elsewhere.example>', /^554 5\.7\.1 /);
      await client.quit();
    } finally {
      await server.stop();
    }
  });
});

describe('XCLIENT', () => {
  it('lets a configured front end set the client address, and nobody else', async () => {
    const trusted = await startTestServer({
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', xclient: ['127.0.0.1'] }],
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['192.0.2.0/24'] } }, { name: 'queue-spool' }],
    });
    const untrusted = await startTestServer({
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['192.0.2.0/24'] } }, { name: 'queue-spool' }],
    });
    try {
      const client = await trusted.client();
      await client.command('XCLIENT ADDR=192.0.2.10 NAME=front.example', /^220 /);
      await client.command('EHLO proxied.example', /^250 /);
      await client.command('MAIL FROM:<a@example.org>');
      await client.command('RCPT TO:<someone@elsewhere.example>', /^250 /);
      await client.quit();

      const other = await untrusted.client();
      const ehlo = await other.command('EHLO x.example', /^250 /);
      assert.ok(!ehlo.raw.includes('XCLIENT'));
      await other.command('XCLIENT ADDR=192.0.2.10', /^5\d\d /);
      await other.quit();
    } finally {
      await trusted.stop();
      await untrusted.stop();
    }
  });
});

describe('XCLIENT LOGIN', () => {
  it('authenticates the session as the user the trusted front end names, and LOGIN= with no value ends that', async () => {
    const server = await startTestServer({
      listeners: [{ name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', submission: true, xclient: ['127.0.0.1'] }],
    });
    try {
      const client = await server.client('submission');
      await client.command('XCLIENT ADDR=192.0.2.10 LOGIN=alice@example.org', /^220 /);
      await client.command('EHLO proxied.example', /^250 /);
      const reply = await client.sendMail('alice@example.org', ['someone@elsewhere.example'], sampleMessage({ from: 'alice@example.org' }));
      const id = /queued as (\S+)/.exec(reply.raw)![1];
      await client.quit();
      const queued = await server.petrel.queue.inspect(id);
      assert.equal(queued?.origin.user, 'alice@example.org');
      assert.equal(queued?.origin.remoteAddress, '192.0.2.10');
      const chunks: Buffer[] = [];
      for await (const chunk of await server.petrel.queue.read(id)) chunks.push(chunk as Buffer);
      assert.match(Buffer.concat(chunks).toString(), /with ESMTPA id /);

      const again = await server.client('submission');
      await again.command('XCLIENT LOGIN=bob@example.org', /^220 /);
      await again.command('EHLO front.example', /^250 /);
      await again.command('MAIL FROM:<bob@example.org>');
      await again.command('RSET');
      await again.command('XCLIENT LOGIN=', /^220 /);
      await again.command('EHLO front.example', /^250 /);
      assert.equal((await again.command('MAIL FROM:<bob@example.org>', /^530 /)).raw, '530 5.7.0 Authentication required');
      await again.quit();
    } finally {
      await server.stop();
    }
  });
});

describe('PROXY header parser', () => {
  it('handles partial input, v1 UNKNOWN, v2 LOCAL and garbage', () => {
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')).kind, 'incomplete');
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\nEHLO')), { kind: 'header', consumed: 15 });
    const local = Buffer.concat([Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00])]);
    assert.deepEqual(parseProxyHeader(local), { kind: 'header', consumed: 16 });
    assert.equal(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'invalid');
    assert.equal(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(200)}`)).kind, 'invalid');
  });
});

describe('PROXY protocol in front of an implicit TLS listener', () => {
  it("counts each handshake against the proxied client's share, not the load balancer's", async () => {
    const certificate = testCertificate('mx.petrel.test');
    const server = await startTestServer({
      tls: { cert: certificate.certFile, key: certificate.keyFile },
      listeners: [{ name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit', proxyProtocol: ['127.0.0.0/8'] }],
      limits: { clientsPerAddress: 1, clientLimitExceptions: [] },
    });
    /** A connection through the "load balancer" for `client`: the PROXY header, then TLS; its greeting, or undefined when dropped. */
    const through = (client: string) =>
      new Promise<{ socket: tls.TLSSocket; greeting: string } | undefined>((resolve) => {
        const raw = net.connect({ host: '127.0.0.1', port: server.port('smtps') }, () => {
          raw.write(`PROXY TCP4 ${client} 127.0.0.1 40000 465\r\n`);
          const socket = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
          socket.once('data', (data) => resolve({ socket, greeting: data.toString() }));
          socket.once('error', () => resolve(undefined));
          socket.once('close', () => resolve(undefined));
        });
        raw.on('error', () => resolve(undefined));
      });
    try {
      const first = await through('192.0.2.10');
      assert.match(first?.greeting ?? '', /^220 /);
      assert.equal(await through('192.0.2.10'), undefined, 'the same client again is over its share');
      const other = await through('192.0.2.11');
      assert.match(other?.greeting ?? '', /^220 /, 'another client behind the same balancer is not');
      first?.socket.destroy();
      other?.socket.destroy();
    } finally {
      await server.stop();
    }
  });
});
