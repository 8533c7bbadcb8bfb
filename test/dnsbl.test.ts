import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dnsblQueryName } from '../plugins/dnsbl/query-name.js';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { FakeDns } from './harness/fake-dns.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const listed = (...codes: string[]) => ({ A: codes });
const IPV6_LOOPBACK_NAME = `${'0.'.repeat(31).replace(/^0\./, '1.')}0`;

function blocklists(): FakeDns {
  return new FakeDns({
    '2.0.0.127.block.test': listed('127.0.0.2'),
    '3.0.0.127.soft.test': listed('127.0.0.4'),
    '4.0.0.127.slow.test': listed('127.0.0.3'),
    '5.0.0.127.block.test': listed('127.0.0.10'),
    '6.0.0.127.block.test': listed('127.255.255.254'),
    '8.0.0.127.junk.test': listed('127.0.0.2'),
    [`${IPV6_LOOPBACK_NAME}.block.test`]: listed('127.0.0.2'),
  }).fail('7.0.0.127.block.test', 'ETIMEOUT');
}

describe('dnsbl', () => {
  const dir = tempDir('petrel-dnsbl-');
  let server: TestServer;
  let dns: FakeDns;

  before(async () => {
    dns = blocklists();
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password' });
    server = await startTestServer(
      {
        listeners: [
          { name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true },
          { name: 'v6', host: '::1', port: 0, tls: 'none' },
        ],
        plugins: [
          { name: 'auth-file', options: { file: users, failureDelay: '10ms' } },
          {
            name: 'dnsbl',
            options: {
              skipNetworks: [],
              zones: [
                { zone: 'block.test', returnCodes: ['127.0.0.2/31'], action: 'reject' },
                { zone: 'soft.test', action: 'tag' },
                { zone: 'slow.test', action: 'defer', message: 'Try later, {ip} is on {zone} ({code})' },
                { zone: 'junk.test', action: 'quarantine', ipv6: false },
              ],
            },
          },
          { name: 'relay-access' },
          { name: 'queue-spool' },
        ],
      },
      { dns },
    );
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  async function mailFrom(localAddress: string, sender = 'someone@sender.example', listener = 'mx') {
    const client = await server.client(listener, listener === 'v6' ? { host: '::1' } : { localAddress });
    const reply = await client.command(`MAIL FROM:<${sender}>`, /^\d{3} /);
    return { client, reply: reply.raw };
  }

  it('refuses a listed client at MAIL FROM with 554 5.7.1 naming the list', async () => {
    const { client, reply } = await mailFrom('127.0.0.2');
    assert.equal(reply, '554 5.7.1 Service unavailable; client host [127.0.0.2] blocked using block.test');
    await client.quit();
  });

  it('asks about IPv6 clients with nibble-reversed names', async () => {
    const { client, reply } = await mailFrom('::1', 'someone@sender.example', 'v6');
    assert.equal(reply, '554 5.7.1 Service unavailable; client host [::1] blocked using block.test');
    await client.quit();
    assert.ok(!dns.queries.some((query) => query.endsWith('.junk.test') && query.includes('.0.0.0.0.')), 'ipv6: false zones are not asked about IPv6');
  });

  it('defers with the zone\'s own message, filling in {ip}, {zone} and {code}', async () => {
    const { client, reply } = await mailFrom('127.0.0.4');
    assert.equal(reply, '451 4.7.1 Try later, 127.0.0.4 is on slow.test (127.0.0.3)');
    await client.quit();
  });

  it('tags or quarantines, and then the message carries the mark', async () => {
    for (const [address, header] of [
      ['127.0.0.3', 'X-Petrel-Warning: dnsbl=listed (soft.test 127.0.0.4) client-ip=127.0.0.3'],
      ['127.0.0.8', 'X-Petrel-Quarantine: dnsbl=listed (junk.test 127.0.0.2) client-ip=127.0.0.8'],
    ]) {
      const client = await server.client('mx', { localAddress: address });
      const reply = await client.sendMail(`x@${address}.example`, ['user@localhost'], sampleMessage());
      assert.match(reply.raw, /^250 /);
      await client.quit();
      const fields = headerFields(await queuedMessageFrom(server, `x@${address}.example`));
      assert.ok(fields.includes(header), fields.join('\n'));
    }
  });

  it('ignores answers outside returnCodes, "query refused" answers and failing lookups', async () => {
    for (const address of ['127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.9']) {
      const { client, reply } = await mailFrom(address);
      assert.match(reply, /^250 /, `${address} is let through`);
      await client.quit();
    }
    assert.ok(server.logs.lines.some((line) => /DNSBL block\.test refused the query \(127\.255\.255\.254\)/.test(String(line.msg))));
    assert.ok(server.logs.lines.some((line) => /DNSBL block\.test lookup failed/.test(String(line.msg))));
  });

  it('lets an authenticated user on a listed address send', async () => {
    const client = await server.client('mx', { localAddress: '127.0.0.2' });
    await client.command(plainAuth('alice@localhost', 'alice password'), /^235 /);
    await client.command('MAIL FROM:<alice@localhost>', /^250 /);
    await client.quit();
  });

  it('caches answers: a returning client costs no new query', async () => {
    const asked = () => dns.queries.filter((query) => query === 'A 2.0.0.127.block.test').length;
    const earlier = asked();
    assert.ok(earlier >= 1);
    const { client } = await mailFrom('127.0.0.2');
    await client.quit();
    assert.equal(asked(), earlier);
  });
});

describe('dnsbl query names', () => {
  it('reverses IPv4 octets and IPv6 nibbles (RFC 5782)', () => {
    assert.equal(dnsblQueryName('192.0.2.99', 'zen.example'), '99.2.0.192.zen.example');
    assert.equal(dnsblQueryName('::ffff:192.0.2.99', 'zen.example'), '99.2.0.192.zen.example');
    assert.equal(
      dnsblQueryName('2001:db8::1', 'zen.example'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example',
    );
    assert.equal(dnsblQueryName('not-an-address', 'zen.example'), undefined);
  });
});
