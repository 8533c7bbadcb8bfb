import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startTlsListener, sendRequireTls } from './fixtures/require-tls.js';
import { testRedis } from './fixtures/redis.js';
import { testCertificate } from './harness/certificates.js';
import { FakeDns } from './harness/fake-dns.js';
import { parseMime } from './harness/mime-parts.js';
import { SinkServer, type SinkOptions } from './harness/sink-server.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * REQUIRETLS (RFC 8689) from the inbound listener to the next hop: offered
 * only where the listener switches it on and only over TLS, the flag kept
 * by both queues, the message relayed by relay-smarthost only over verified
 * TLS to a server offering REQUIRETLS, and bounced 5.7.30 otherwise with a
 * report that returns the headers only.
 */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const certificate = testCertificate('smarthost.test');

async function sink(options: SinkOptions = {}): Promise<SinkServer> {
  const server = await SinkServer.start({ tls: certificate, ...options });
  cleanups.push(() => server.close());
  return server;
}

type QueueName = 'queue-spool' | 'queue-redis';

/** Petrel with the REQUIRETLS listener, `queue`, and relay-smarthost to `to` as the only delivery target. */
async function petrel(queue: QueueName, to: SinkServer, smarthost: Record<string, unknown> = {}): Promise<TestServer> {
  const redis = queue === 'queue-redis' ? await testRedis() : undefined;
  if (redis) cleanups.push(redis.cleanup);
  const server = await startTestServer(
    {
      ...startTlsListener(),
      ...(redis ? { redis: { url: redis.url, keyPrefix: redis.prefix } } : {}),
      delivery: { retry: ['1h'], delayWarningAfter: 0 },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: queue },
        { name: 'relay-smarthost', options: { host: 'smarthost.test', port: to.port, ca: [certificate.certFile], ...smarthost } },
      ],
    },
    { dns: new FakeDns({ 'smarthost.test': { A: ['127.0.0.1'] } }) },
  );
  cleanups.push(() => server.stop());
  return server;
}

const SENDER = 'sender@origin.test';

/** The bounce that came back to SENDER through the same smarthost: its Status and whether it quotes the body. */
async function bounceAt(host: SinkServer): Promise<{ status: string; contentTypes: string[]; text: string }> {
  await host.waitUntil((messages) => messages.some((m) => m.from === ''));
  const report = host.messages.find((m) => m.from === '')!;
  assert.deepEqual(report.to, [SENDER]);
  assert.equal(report.requireTls, false, 'the report itself goes without REQUIRETLS');
  const dsn = await parseMime(report.data);
  const status = /^Status: (\S+)/m.exec(dsn.parts.find((p) => p.contentType === 'message/delivery-status')?.body ?? '')?.[1] ?? '';
  return { status, contentTypes: dsn.parts.map((p) => p.contentType), text: report.data.toString() };
}

describe('REQUIRETLS offered by a listener', () => {
  it('is offered after STARTTLS where switched on, never in plaintext, and its parameter is 555 where not offered', async () => {
    const on = await petrel('queue-spool', await sink());
    const client = await on.client();
    assert.ok(!(await client.command('EHLO client.example.test')).lines.includes('REQUIRETLS'), 'not before TLS');
    assert.match((await client.command('MAIL FROM:<a@example.org> REQUIRETLS', /^5\d\d /)).raw, /^530 /, 'never over plaintext');
    await client.startTls();
    assert.ok((await client.command('EHLO client.example.test')).lines.includes('REQUIRETLS'), 'offered over TLS');
    await client.command('MAIL FROM:<a@example.org> REQUIRETLS');
    await client.quit();

    const own = startTlsListener();
    const off = await startTestServer({ ...own, listeners: [{ ...(own.listeners[0] as object), offerRequireTls: false }] });
    cleanups.push(() => off.stop());
    const plain = await off.client();
    await plain.startTls();
    assert.ok(!(await plain.command('EHLO client.example.test')).lines.includes('REQUIRETLS'), 'off by default');
    assert.match((await plain.command('MAIL FROM:<a@example.org> REQUIRETLS', /^555 /)).raw, /^555 5\.5\.4 MAIL FROM parameter REQUIRETLS /);
    await plain.quit();
  });
});

for (const queue of ['queue-spool', 'queue-redis'] as const) {
  describe(`REQUIRETLS through ${queue} to relay-smarthost`, () => {
    it('is relayed over verified TLS to a smarthost that offers REQUIRETLS, with the flag passed on', async () => {
      const host = await sink();
      const server = await petrel(queue, host);
      const id = await sendRequireTls(server, SENDER, 'lena@remote.test');
      assert.equal((await server.petrel.queue.inspect(id))?.envelope.requireTls, true, 'the queue keeps the flag');
      await host.waitUntil((messages) => messages.length === 1);
      assert.deepEqual(host.messages[0].to, ['lena@remote.test']);
      assert.equal(host.messages[0].requireTls, true, 'MAIL FROM carried REQUIRETLS');
      assert.equal(host.messages[0].secure, true);
    });

    it('bounces 5.7.30 when the smarthost does not offer REQUIRETLS, and the report returns headers only', async () => {
      const host = await sink({ hideRequireTls: true });
      const server = await petrel(queue, host);
      await sendRequireTls(server, SENDER, 'mike@remote.test');
      const bounce = await bounceAt(host);
      assert.equal(bounce.status, '5.7.30');
      assert.ok(bounce.contentTypes.includes('text/rfc822-headers'), bounce.contentTypes.join(', '));
      assert.ok(!bounce.contentTypes.includes('message/rfc822'), 'the body is not returned');
      assert.equal(host.messages.filter((m) => m.from !== '').length, 0, 'the message itself never went out');
    });

    it('bounces 5.7.30 when the smarthost certificate is not verified, even though it offers REQUIRETLS', async () => {
      const host = await sink();
      const server = await petrel(queue, host, { verifyCertificate: false });
      await sendRequireTls(server, SENDER, 'nina@remote.test');
      const bounce = await bounceAt(host);
      assert.equal(bounce.status, '5.7.30');
      assert.match(bounce.text, /does not verify the certificate/);
      assert.equal(host.messages.filter((m) => m.from !== '').length, 0, 'the message itself never went out');
    });
  });
}
