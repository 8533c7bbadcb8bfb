import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { DnssecStub } from '../core/dns/dnssec-stub.js';
import { configuredResolver } from '../core/dns/resolver.js';
import { parseServerAddress, type ServerAddress } from '../core/dns/server-address.js';
import { testCertificate } from './harness/certificates.js';
import { DnssecWorld } from './harness/dnssec-world.js';
import { afterFirstAttempt } from './harness/eventually.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * DNSSEC for real: zones signed at run time, served by nsd, validated by
 * unbound (test/harness/dnssec-world.ts), and Petrel pointed at unbound with
 * `dns.servers`. DANE (RFC 7672) must use TLSA records only when unbound
 * vouched for them, and never send in plaintext what DANE protects.
 */

const SENDER = 'sender@origin.test';

/** A DANE-EE record (3 1 1) for the certificate's key, or for some other key. */
function tlsaFor(certPem: Buffer, matching: boolean): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `3 1 1 ${createHash('sha256').update(matching ? spki : Buffer.from('another key')).digest('hex')}`;
}

const mxZone = (port: number, tlsa: string) => ['@ IN MX 10 mx', 'mx IN A 127.0.0.1', `_${port}._tcp.mx IN TLSA ${tlsa}`];

describe('DNSSEC through a validating resolver (unbound)', () => {
  const sinks: Record<string, SinkServer> = {};
  let world: DnssecWorld;
  let unbound: ServerAddress;
  const certificate = testCertificate('mx.secure.test');

  before(async () => {
    for (const zone of ['secure.test', 'mismatch.test', 'bogus.test', 'plain.test']) sinks[zone] = await SinkServer.start({ tls: certificate });
    const port = (zone: string) => sinks[zone].port;
    world = await DnssecWorld.start([
      {
        name: 'secure.test',
        signed: true,
        records: [
          ...mxZone(port('secure.test'), tlsaFor(certificate.cert, true)),
          // Too many to fit a 1232-byte UDP answer with their signature: the answer comes truncated.
          ...Array.from({ length: 40 }, (_, n) => `_many._tcp.mx IN TLSA 3 1 1 ${createHash('sha256').update(String(n)).digest('hex')}`),
          'nodata IN A 127.0.0.1',
        ],
      },
      { name: 'mismatch.test', signed: true, records: mxZone(port('mismatch.test'), tlsaFor(certificate.cert, false)) },
      {
        name: 'bogus.test',
        signed: true,
        records: mxZone(port('bogus.test'), tlsaFor(certificate.cert, true)),
        bogus: [{ name: `_${port('bogus.test')}._tcp.mx`, type: 'TLSA' }],
      },
      // Unsigned, with a TLSA record the certificate does not match: it must be ignored.
      { name: 'plain.test', signed: false, records: mxZone(port('plain.test'), tlsaFor(certificate.cert, false)) },
    ]);
    unbound = parseServerAddress(world.resolver)!;
  });
  after(async () => {
    await world?.stop();
    await Promise.all(Object.values(sinks).map((sink) => sink.close()));
  });

  describe('the DNSSEC stub', () => {
    it('reports the AD bit: validated answers are secure, unsigned ones are not', async () => {
      const stub = new DnssecStub([unbound], 2_000);
      assert.deepEqual(await stub.resolve('mx.secure.test', 'A'), { records: ['127.0.0.1'], secure: true });
      assert.deepEqual(await stub.resolve('secure.test', 'MX'), { records: [{ exchange: 'mx.secure.test', priority: 10 }], secure: true });
      const tlsa = await stub.resolve(`_${sinks['secure.test'].port}._tcp.mx.secure.test`, 'TLSA');
      assert.equal(tlsa.secure, true);
      const record = tlsa.records[0] as { certUsage: number; selector: number; match: number; data: ArrayBuffer };
      assert.deepEqual([record.certUsage, record.selector, record.match], [3, 1, 1]);
      assert.equal(Buffer.from(record.data).toString('hex'), tlsaFor(certificate.cert, true).slice('3 1 1 '.length));
      assert.deepEqual(await stub.resolve('mx.plain.test', 'A'), { records: ['127.0.0.1'], secure: false });
    });

    it('fails like node:dns: NXDOMAIN is ENOTFOUND, no such record ENODATA, bogus data ESERVFAIL', async () => {
      const stub = new DnssecStub([unbound], 2_000);
      await assert.rejects(stub.resolve('nowhere.secure.test', 'A'), { code: 'ENOTFOUND' });
      await assert.rejects(stub.resolve('nodata.secure.test', 'MX'), { code: 'ENODATA' });
      await assert.rejects(stub.resolve(`_${sinks['bogus.test'].port}._tcp.mx.bogus.test`, 'TLSA'), { code: 'ESERVFAIL' });
      await assert.rejects(stub.resolve('bad..name.secure.test', 'A'), { code: 'ENOTFOUND' });
    });

    it('asks again over TCP when the answer was truncated', async () => {
      const answer = await new DnssecStub([unbound], 2_000).resolve('_many._tcp.mx.secure.test', 'TLSA');
      assert.equal(answer.records.length, 40);
      assert.equal(answer.secure, true);
    });

    it('moves on to the next server when one does not answer', async () => {
      const silent: Socket = createSocket('udp4');
      await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
      try {
        const stub = new DnssecStub([{ host: '127.0.0.1', port: silent.address().port }, unbound], 1_000);
        assert.equal((await stub.resolve('mx.secure.test', 'A')).secure, true);
        await assert.rejects(new DnssecStub([{ host: '127.0.0.1', port: silent.address().port }], 200).resolve('mx.secure.test', 'A'), { code: 'ETIMEOUT' });
      } finally {
        silent.close();
      }
    });

    it('an authoritative server does not validate: its answers are never secure', async () => {
      const answer = await new DnssecStub([parseServerAddress(world.authoritative)!], 2_000).resolve('mx.secure.test', 'A');
      assert.deepEqual(answer, { records: ['127.0.0.1'], secure: false });
    });

    it('dns.servers points both the ordinary and the DNSSEC lookups at the configured servers', async () => {
      const resolver = configuredResolver({ servers: [world.resolver], timeout: 2_000 });
      const [mx] = (await resolver.resolve('secure.test', 'MX')) as { exchange: string; priority: number }[];
      assert.deepEqual([mx.exchange, mx.priority], ['mx.secure.test', 10]);
      assert.deepEqual(await resolver.resolveDnssec!('mx.secure.test', 'A'), { records: ['127.0.0.1'], secure: true });
    });
  });

  describe('relay-mx with DANE', () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer(
        {
          dns: { servers: [world.resolver], reverseLookup: false, timeout: '2s' },
          delivery: { retry: ['1h'], delayWarningAfter: 0, idlePoll: '1s' },
          plugins: [
            { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
            { name: 'queue-spool' },
            {
              name: 'relay-mx',
              options: {
                allowLocalDestinations: true,
                ipv6: 'off',
                mtaSts: { enabled: false },
                dane: { enabled: true },
                exchangePorts: Object.fromEntries(Object.entries(sinks).map(([zone, sink]) => [`mx.${zone}`, sink.port])),
              },
            },
          ],
        },
        { dns: 'configured' },
      );
    });
    after(() => server?.stop());

    async function send(to: string): Promise<string> {
      const client = await server.client();
      await client.command(`MAIL FROM:<${SENDER}>`);
      await client.command(`RCPT TO:<${to}>`);
      await client.command('DATA', /^354 /);
      client.write(sampleMessage({ from: SENDER, to, subject: 'DANE' }));
      const reply = await client.command('.', /^250 /);
      await client.quit();
      return /queued as (\S+)/.exec(reply.raw)![1];
    }

    it('(a) a validated TLSA record the certificate matches: delivered over TLS', async () => {
      await send('ann@secure.test');
      await sinks['secure.test'].waitUntil((messages) => messages.length === 1);
      assert.equal(sinks['secure.test'].messages[0].secure, true);
      assert.ok(server.logs.lines.some((line) => line.mx === 'mx.secure.test' && line.tlsPolicy === 'dane'), 'the connection was at the dane level');
    });

    it('(b) a validated TLSA record the certificate does not match: deferred, nothing sent', async () => {
      const id = await send('bob@mismatch.test');
      const message = await afterFirstAttempt(server, id);
      assert.equal(message.recipients[0].status, 'deferred');
      assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 DANE/);
      assert.equal(sinks['mismatch.test'].messages.length, 0);
    });

    it('(c) a TLSA record with a bogus signature: deferred, never sent in the clear', async () => {
      const id = await send('cat@bogus.test');
      const message = await afterFirstAttempt(server, id);
      assert.equal(message.recipients[0].status, 'deferred');
      assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 DANE TLSA lookup for mx\.bogus\.test failed/);
      assert.equal(sinks['bogus.test'].messages.length, 0);
    });

    it('(d) a TLSA record in an unsigned zone is ignored: opportunistic TLS', async () => {
      await send('dan@plain.test');
      await sinks['plain.test'].waitUntil((messages) => messages.length === 1);
      assert.equal(sinks['plain.test'].messages[0].secure, true, 'STARTTLS all the same');
      assert.ok(server.logs.lines.some((line) => line.mx === 'mx.plain.test' && line.tlsPolicy === 'opportunistic'));
    });
  });
});
