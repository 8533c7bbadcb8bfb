import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { configuredResolver } from '../core/dns/resolver.js';
import { parseServerAddress } from '../core/dns/server-address.js';
import { DnssecWorld } from './harness/dnssec-world.js';
import { sparePort } from './harness/ports.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * `dns.servers`: Petrel asks the name servers the config names, not the
 * ones in /etc/resolv.conf (which on this machine reach nothing). A real
 * unbound serves the answers (test/harness/dnssec-world.ts); SPF through
 * mailauth and a DNSBL show the lookups of plugins go there too.
 */
describe('dns.servers', () => {
  let world: DnssecWorld;
  let server: TestServer;

  before(async () => {
    world = await DnssecWorld.start([
      {
        name: 'mail.test',
        signed: false,
        records: [
          'pass IN TXT "v=spf1 ip4:127.0.0.1 -all"',
          // c-ares refuses to ask about a name with a colon (EBADNAME): no host has it, so `a:` matches nothing.
          'colon IN TXT "v=spf1 a:foo:bar.mail.test -all"',
        ],
      },
      { name: 'bl.test', signed: false, records: ['1.0.0.127 IN A 127.0.0.2'] },
    ]);
    server = await startTestServer(
      {
        dns: { servers: [world.resolver], reverseLookup: false, timeout: '2s' },
        plugins: [
          { name: 'mailauth', options: { skipNetworks: [], spf: { fail: 'reject', permerror: 'reject' } } },
          { name: 'relay-access' },
          { name: 'queue-spool' },
        ],
      },
      { dns: 'configured' },
    );
  });
  after(async () => {
    await server?.stop();
    await world?.stop();
  });

  it('SPF records come from the configured resolver', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<ann@pass.mail.test>', /^250 /);
    await client.quit();
    assert.ok(server.logs.lines.some((line) => line.msg === 'SPF checked' && line.spf === 'pass'));
  });

  it('a name DNS cannot carry is a name that does not exist: SPF fail, not permerror', async () => {
    const client = await server.client();
    const reply = await client.command('MAIL FROM:<bob@colon.mail.test>', /^550 /);
    assert.match(reply.raw, /^550 5\.7\.23 /, 'fail (5.7.23), not permerror (5.7.24)');
    await client.quit();
  });

  it('DNSBL lookups go there too', async () => {
    const listed = await startTestServer(
      {
        dns: { servers: [world.resolver], reverseLookup: false, timeout: '2s' },
        plugins: [{ name: 'dnsbl', options: { skipNetworks: [], zones: [{ zone: 'bl.test' }] } }, { name: 'relay-access' }, { name: 'queue-spool' }],
      },
      { dns: 'configured' },
    );
    try {
      const client = await listed.client();
      const reply = await client.command('MAIL FROM:<cat@example.org>', /^5\d\d /);
      assert.match(reply.raw, /bl\.test/);
      await client.quit();
    } finally {
      await listed.stop();
    }
  });

  it('servers are given with their ports, IPv4 and IPv6 alike', async () => {
    assert.deepEqual(parseServerAddress('127.0.0.1'), { host: '127.0.0.1', port: 53 });
    assert.deepEqual(parseServerAddress('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseServerAddress('::1'), { host: '::1', port: 53 });
    assert.deepEqual(parseServerAddress('[::1]:5353'), { host: '::1', port: 5353 });
    assert.deepEqual(parseServerAddress('[2001:db8::53]'), { host: '2001:db8::53', port: 53 });
    for (const wrong of ['ns.example.org', 'ns.example.org:53', '127.0.0.1:0', '127.0.0.1:65536', '[127.0.0.1]:53', '::1:53x', '[::1]:', '']) {
      assert.equal(parseServerAddress(wrong), undefined, wrong);
    }
  });

  it('a name c-ares refuses is ENOTFOUND, decided before anything is sent', async () => {
    const resolver = configuredResolver({ servers: [`127.0.0.1:${await sparePort({ udp: true })}`], timeout: 500 });
    await assert.rejects(resolver.resolve('foo:bar.example.com', 'A'), { code: 'ENOTFOUND' });
    await assert.rejects(resolver.resolve('empty..label.example.com', 'TXT'), { code: 'ENOTFOUND' });
  });
});
