import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { classifyHelo, sameAddress } from '../plugins/helo-check/helo-name.js';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { FakeDns } from './harness/fake-dns.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

describe('helo-check', () => {
  const dir = tempDir('petrel-helo-');
  let server: TestServer;

  before(async () => {
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password' });
    const dns = new FakeDns({ 'real.example': { A: ['192.0.2.5'] }, 'mailer.example': { MX: [{ exchange: 'mx.mailer.example', priority: 5 }] } }).fail(
      'flaky.example',
      'ESERVFAIL',
    );
    server = await startTestServer(
      {
        server: { localDomains: ['localhost', 'petrel.test'] },
        listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }],
        plugins: [
          { name: 'auth-file', options: { file: users, failureDelay: '10ms' } },
          { name: 'helo-check', options: { skipNetworks: [], checks: { unresolvable: 'defer', literalMismatch: 'tag' }, ourNames: ['mail.petrel.test'] } },
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

  async function mailAfter(ehlo: string, localAddress = '127.0.0.1'): Promise<string> {
    const client = await server.client('mx', { ehlo, localAddress });
    const reply = await client.command('MAIL FROM:<someone@sender.example>', /^\d{3} /);
    await client.quit();
    return reply.raw;
  }

  it('refuses invalid names, bare addresses and names without a dot at MAIL FROM', async () => {
    assert.equal(await mailAfter('bad!name.example'), '501 5.5.2 <bad!name.example>: Helo command rejected: Invalid name');
    assert.equal(await mailAfter('192.0.2.1'), '501 5.5.2 <192.0.2.1>: Helo command rejected: an address must be given as a literal like [192.0.2.1]');
    assert.equal(await mailAfter('PC-17'), '504 5.5.2 <PC-17>: Helo command rejected: need fully-qualified hostname');
    assert.equal(await mailAfter('[300.1.2.3]'), '501 5.5.2 <[300.1.2.3]>: Helo command rejected: Invalid name');
  });

  it('refuses a client that claims to be us: our host name, a local domain, our names, our address', async () => {
    for (const name of ['mx.petrel.test', 'MX.Petrel.Test.', 'petrel.test', 'mail.petrel.test']) {
      assert.equal(await mailAfter(name), `550 5.7.1 <${name}>: Helo command rejected: You are not me`);
    }
    assert.equal(await mailAfter('[127.0.0.1]', '127.0.0.2'), '550 5.7.1 <[127.0.0.1]>: Helo command rejected: You are not me');
  });

  it('accepts resolvable names and its own address as a literal', async () => {
    assert.match(await mailAfter('real.example'), /^250 /);
    assert.match(await mailAfter('mailer.example'), /^250 /, 'an MX record is enough');
    assert.match(await mailAfter('[127.0.0.1]'), /^250 /);
  });

  it('defers an unresolvable name when configured to, but never on a DNS failure', async () => {
    assert.equal(await mailAfter('ghost.example'), '450 4.7.1 <ghost.example>: Helo command rejected: Host not found');
    assert.match(await mailAfter('flaky.example'), /^250 /);
  });

  it('tags a literal that is not the client address', async () => {
    const client = await server.client('mx', { ehlo: '[192.0.2.9]' });
    const reply = await client.sendMail('nat@sender.example', ['user@localhost'], sampleMessage());
    assert.match(reply.raw, /^250 /);
    await client.quit();
    assert.ok(headerFields(await queuedMessageFrom(server, 'nat@sender.example')).includes('X-Petrel-Warning: helo=literalMismatch ([192.0.2.9])'));
  });

  it('does not judge an authenticated session by its HELO', async () => {
    const client = await server.client('mx', { ehlo: 'PC-17' });
    await client.command(plainAuth('alice@localhost', 'alice password'), /^235 /);
    await client.command('MAIL FROM:<alice@localhost>', /^250 /);
    await client.quit();
  });
});

describe('HELO names', () => {
  it('classifies what clients send', () => {
    assert.deepEqual(classifyHelo('mail.example.org'), { kind: 'hostname', name: 'mail.example.org', qualified: true });
    assert.deepEqual(classifyHelo('Mail.Example.Org.'), { kind: 'hostname', name: 'mail.example.org', qualified: true });
    assert.deepEqual(classifyHelo('my_pc.corp.example'), { kind: 'hostname', name: 'my_pc.corp.example', qualified: true });
    assert.deepEqual(classifyHelo('localhost'), { kind: 'hostname', name: 'localhost', qualified: false });
    assert.deepEqual(classifyHelo('[192.0.2.1]'), { kind: 'literal', address: '192.0.2.1' });
    assert.deepEqual(classifyHelo('[IPv6:2001:DB8::1]'), { kind: 'literal', address: '2001:db8::1' });
    assert.deepEqual(classifyHelo('192.0.2.1'), { kind: 'bare-address', address: '192.0.2.1' });
    for (const invalid of ['-bad.example', 'bad-.example', 'a..b', '[2001:db8::1]', '[IPv6:192.0.2.1]', '10.1.2', 'x'.repeat(64) + '.example', 'ex ample']) {
      assert.deepEqual(classifyHelo(invalid), { kind: 'invalid' }, invalid);
    }
  });

  it('compares addresses whatever their spelling', () => {
    assert.ok(sameAddress('::ffff:192.0.2.1', '192.0.2.1'));
    assert.ok(sameAddress('2001:DB8:0:0::1', '2001:db8::1'));
    assert.ok(!sameAddress('2001:db8::1', '2001:db8::2'));
  });
});
