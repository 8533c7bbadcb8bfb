import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const LOCAL_DOMAINS = ['localhost', 'petrel.test', 'bücher.example'];

/**
 * Envelope tricks an open-relay scanner tries. `relay` ones reach
 * relay-access and must get its exact reply; `syntax` ones are already
 * refused by the SMTP parser. Every one must be refused.
 */
const OPEN_RELAY_MATRIX: { rcpt: string; refusedBy: 'relay' | 'syntax'; what: string }[] = [
  { what: 'plain relay', rcpt: 'victim@elsewhere.example', refusedBy: 'relay' },
  { what: 'case variation of a foreign domain', rcpt: 'Victim@ElseWhere.EXAMPLE', refusedBy: 'relay' },
  { what: 'percent hack', rcpt: 'victim%elsewhere.example@localhost', refusedBy: 'relay' },
  { what: 'percent hack in upper case', rcpt: 'VICTIM%ELSEWHERE.EXAMPLE@LOCALHOST', refusedBy: 'relay' },
  { what: 'double percent hack', rcpt: 'victim%elsewhere.example%petrel.test@localhost', refusedBy: 'relay' },
  { what: 'bang path', rcpt: 'elsewhere.example!victim@localhost', refusedBy: 'relay' },
  { what: 'bang path and percent hack', rcpt: 'elsewhere.example!victim%other.example@localhost', refusedBy: 'relay' },
  { what: 'source route (stripped by the parser, then a foreign domain)', rcpt: '@localhost:victim@elsewhere.example', refusedBy: 'relay' },
  { what: 'multi-hop source route', rcpt: '@localhost,@petrel.test:victim@elsewhere.example', refusedBy: 'relay' },
  { what: 'quoted local part with percent', rcpt: '"victim%elsewhere.example"@localhost', refusedBy: 'relay' },
  { what: 'quoted local part with @ (valid syntax, RFC 5321 4.1.2)', rcpt: '"victim@elsewhere.example"@localhost', refusedBy: 'relay' },
  { what: 'escaped @ in the local part', rcpt: 'victim\\@elsewhere.example@localhost', refusedBy: 'syntax' },
  { what: 'two domains', rcpt: 'victim@elsewhere.example@localhost', refusedBy: 'syntax' },
  { what: 'trailing dot on the local domain', rcpt: 'victim@localhost.', refusedBy: 'syntax' },
  { what: 'trailing dot on a foreign domain', rcpt: 'victim@elsewhere.example.', refusedBy: 'syntax' },
  { what: 'local domain as a prefix of a foreign one', rcpt: 'victim@localhost.elsewhere.example', refusedBy: 'relay' },
  { what: 'subdomain of a local domain', rcpt: 'victim@mail.petrel.test', refusedBy: 'relay' },
  { what: 'IPv4 address literal', rcpt: 'victim@[192.0.2.1]', refusedBy: 'relay' },
  { what: 'our own address as a literal', rcpt: 'victim@[127.0.0.1]', refusedBy: 'relay' },
  { what: 'IPv6 address literal', rcpt: 'victim@[IPv6:2001:db8::1]', refusedBy: 'relay' },
  { what: 'port after the domain', rcpt: 'victim@localhost:25', refusedBy: 'syntax' },
  { what: 'percent in the domain', rcpt: 'victim@localhost%elsewhere.example', refusedBy: 'syntax' },
  { what: 'look-alike of a local domain (Cyrillic o)', rcpt: 'victim@l\u043ecalhost', refusedBy: 'relay' },
  { what: 'postmaster at a foreign domain', rcpt: 'postmaster@elsewhere.example', refusedBy: 'relay' },
  { what: 'bare bang path without a domain', rcpt: 'elsewhere.example!victim', refusedBy: 'syntax' },
];

const LOCAL_RECIPIENTS = ['someone@localhost', 'SOMEONE@LOCALHOST', 'someone@Petrel.Test', 'postmaster', 'someone@xn--bcher-kva.example', 'someone@bücher.example'];

describe('relay-access: open-relay matrix, unauthenticated, from a client that may not relay', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      server: { localDomains: LOCAL_DOMAINS },
      // The matrix is one connection making one error after another, which the error limits
      // exist to cut short (test/connection-limits.test.ts); here every reply must be seen.
      limits: { softErrorLimit: 100, hardErrorLimit: 100 },
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['127.0.0.9/32'] } }, { name: 'queue-spool' }],
    });
  });
  after(() => server.stop());

  it(`refuses every one of ${OPEN_RELAY_MATRIX.length} relay tricks`, async () => {
    assert.ok(OPEN_RELAY_MATRIX.length >= 15);
    const client = await server.client('mx', { ehlo: 'scanner.example' });
    // SMTPUTF8, so the look-alike domain reaches relay-access (without it the core refuses it, 553 5.6.7).
    await client.command('MAIL FROM:<scanner@elsewhere.example> SMTPUTF8');
    const outcomes: string[] = [];
    for (const trick of OPEN_RELAY_MATRIX) {
      const reply = await client.command(`RCPT TO:<${trick.rcpt}>`, /^\d{3} /);
      if (trick.refusedBy === 'relay') {
        if (!/^554 5\.7\.1 <.*>: Relay access denied$/.test(reply.raw)) outcomes.push(`${trick.what} <${trick.rcpt}>: ${reply.raw}`);
      } else if (!/^5\d\d /.test(reply.raw)) {
        outcomes.push(`${trick.what} <${trick.rcpt}>: ${reply.raw}`);
      }
    }
    assert.deepEqual(outcomes, [], 'every trick is refused');
    // Nothing was accepted, so DATA has no recipient to go to.
    await client.command('DATA', /^503 /);
    await client.quit();
    assert.equal((await server.petrel.queue.stats()).active, 0);
  });

  it('accepts the same client for local recipients, in any case and spelling of the domain', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<sender@elsewhere.example> SMTPUTF8');
    for (const rcpt of LOCAL_RECIPIENTS) await client.command(`RCPT TO:<${rcpt}>`, /^250 /);
    await client.command('DATA', /^354 /);
    client.write(sampleMessage().replace(/\r?\n/g, '\r\n'));
    await client.command('.', /^250 2\.0\.0 /);
    await client.quit();
  });

  it('lets a relay network relay, and only that network', async () => {
    const trusted = await server.client('mx', { localAddress: '127.0.0.9' });
    const reply = await trusted.sendMail('app@petrel.test', ['someone@elsewhere.example'], sampleMessage());
    assert.match(reply.raw, /^250 2\.0\.0 /);
    await trusted.quit();
    const neighbour = await server.client('mx', { localAddress: '127.0.0.10' });
    await neighbour.command('MAIL FROM:<app@petrel.test>');
    await neighbour.command('RCPT TO:<someone@elsewhere.example>', /^554 5\.7\.1 /);
    await neighbour.quit();
  });
});

describe('relay-access over IPv6', () => {
  it('matches IPv6 relay networks and refuses IPv6 clients outside them', async () => {
    const server = await startTestServer({
      listeners: [
        { name: 'v6', host: '::1', port: 0, tls: 'none' },
        { name: 'v6-other', host: '::1', port: 0, tls: 'none' },
      ],
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['::1/128'] } }, { name: 'queue-spool' }],
    });
    const strict = await startTestServer({
      listeners: [{ name: 'v6', host: '::1', port: 0, tls: 'none' }],
      plugins: [{ name: 'relay-access', options: { relayNetworks: ['2001:db8::/32', '127.0.0.0/8'] } }, { name: 'queue-spool' }],
    });
    try {
      const inside = await server.client('v6', { host: '::1' });
      await inside.command('MAIL FROM:<app@localhost>');
      await inside.command('RCPT TO:<someone@elsewhere.example>', /^250 /);
      await inside.quit();
      const outside = await strict.client('v6', { host: '::1' });
      await outside.command('MAIL FROM:<app@localhost>');
      const reply = await outside.command('RCPT TO:<someone@elsewhere.example>', /^554 /);
      assert.equal(reply.raw, '554 5.7.1 <someone@elsewhere.example>: Relay access denied');
      await outside.command('RCPT TO:<someone@localhost>', /^250 /);
      await outside.quit();
    } finally {
      await Promise.all([server.stop(), strict.stop()]);
    }
  });
});

describe('relay-access on a submission listener', () => {
  const dir = tempDir('petrel-relay-auth-');
  let server: TestServer;
  const submission = { name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', auth: true, submission: true, insecureAuth: true };

  before(async () => {
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password', carol: 'carol password', 'dave@localhost': 'dave password' });
    server = await startTestServer({
      server: { localDomains: ['localhost', 'petrel.test'] },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }, submission],
      plugins: [
        { name: 'auth-file', options: { file: users, failureDelay: '10ms' } },
        { name: 'relay-access', options: { senderLogins: { '@shared.example': ['alice@localhost'], 'billing@petrel.test': ['dave@localhost'] } } },
        { name: 'queue-spool' },
      ],
    });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  async function loggedIn(user: string, password: string) {
    const client = await server.client('submission');
    await client.command(plainAuth(user, password), /^235 /);
    return client;
  }

  it('lets an authenticated user relay as themselves', async () => {
    const client = await loggedIn('alice@localhost', 'alice password');
    const reply = await client.sendMail('alice@localhost', ['friend@elsewhere.example'], sampleMessage({ from: 'Alice <alice@localhost>' }));
    assert.match(reply.raw, /^250 2\.0\.0 /);
    await client.quit();
  });

  it("refuses another user's address with 553 5.7.1", async () => {
    const client = await loggedIn('alice@localhost', 'alice password');
    const reply = await client.command('MAIL FROM:<dave@localhost>', /^553 /);
    assert.equal(reply.raw, '553 5.7.1 <dave@localhost>: Sender address rejected: not owned by user alice@localhost');
    await client.command('MAIL FROM:<billing@petrel.test>', /^553 5\.7\.1 /);
    await client.command('MAIL FROM:<alice@elsewhere.example>', /^553 5\.7\.1 /);
    await client.quit();
  });

  it('accepts sub-addresses, case variations, the null sender and senders the map grants', async () => {
    const alice = await loggedIn('alice@localhost', 'alice password');
    for (const sender of ['alice+lists@localhost', 'ALICE@LocalHost', '', 'anyone@shared.example']) {
      await alice.command(`MAIL FROM:<${sender}>`, /^250 /);
      await alice.command('RSET', /^250 /);
    }
    await alice.quit();
    const dave = await loggedIn('dave@localhost', 'dave password');
    await dave.command('MAIL FROM:<billing@petrel.test>', /^250 /);
    await dave.quit();
  });

  it("refuses a header From: or Sender: naming someone else's address with 550 5.7.1, however it is written", async () => {
    const alice = await loggedIn('alice@localhost', 'alice password');
    const headers = (fields: string) => `${fields}\r\nTo: friend@elsewhere.example\r\nSubject: who am I\r\n\r\nbody\r\n`;
    const refused: [string, string][] = [
      ['From: Bob <bob@localhost>', '550 5.7.1 From: address <bob@localhost> is not owned by user alice@localhost'],
      ['From: "alice@localhost" <bob@localhost>', '550 5.7.1 From: address <bob@localhost> is not owned by user alice@localhost'],
      ['From: alice@localhost, Bob <bob@localhost>', '550 5.7.1 From: address <bob@localhost> is not owned by user alice@localhost'],
      ['From: alice@localhost\r\nFrom: bob@localhost', '550 5.7.1 From: address <bob@localhost> is not owned by user alice@localhost'],
      ['From: =?utf-8?q?Alice?= <alice@localhost>\r\nSender: dave@localhost', '550 5.7.1 Sender: address <dave@localhost> is not owned by user alice@localhost'],
      ['From: Bob (alice@localhost) <bob@localhost>', '550 5.7.1 From: address <bob@localhost> is not owned by user alice@localhost'],
      // White space before the colon (RFC 5322's obsolete syntax), first in the block, where mailsplit sees an mbox line.
      ['From : Bob <bob@localhost>\r\nFrom: alice@localhost', '550 5.7.1 From: address <bob@localhost> is not owned by user alice@localhost'],
      ['From: undisclosed-senders:;', '550 5.7.1 Message has no From: address; it must name an address of user alice@localhost'],
      ['X-Not-From: alice@localhost', '550 5.7.1 Message has no From: address; it must name an address of user alice@localhost'],
    ];
    for (const [fields, expected] of refused) {
      const reply = await alice.sendMail('alice@localhost', ['friend@elsewhere.example'], headers(fields));
      assert.equal(reply.raw, expected, fields);
    }
    for (const fields of ['From: Alice <ALICE+news@LocalHost>', 'From: "Bob" <alice@localhost>', 'From: anyone@shared.example\r\nSender: alice@localhost']) {
      const reply = await alice.sendMail('alice@localhost', ['friend@elsewhere.example'], headers(fields));
      assert.match(reply.raw, /^250 2\.0\.0 /, fields);
    }
    await alice.quit();
    const dave = await loggedIn('dave@localhost', 'dave password');
    const reply = await dave.sendMail('billing@petrel.test', ['customer@elsewhere.example'], headers('From: Billing <billing@petrel.test>'));
    assert.match(reply.raw, /^250 2\.0\.0 /, 'senderLogins counts for the header too');
    await dave.quit();
  });

  it('accepts the null sender from a user for local recipients only', async () => {
    const alice = await loggedIn('alice@localhost', 'alice password');
    await alice.command('MAIL FROM:<>');
    const remote = await alice.command('RCPT TO:<friend@elsewhere.example>', /^550 /);
    assert.equal(remote.raw, '550 5.7.1 <friend@elsewhere.example>: the null sender <> is accepted for local recipients only');
    await alice.command('RCPT TO:<carol@localhost>', /^250 /);
    await alice.quit();
  });

  it('gives a bare login its name at every local domain', async () => {
    const carol = await loggedIn('carol', 'carol password');
    for (const sender of ['carol@localhost', 'carol@petrel.test']) {
      await carol.command(`MAIL FROM:<${sender}>`, /^250 /);
      await carol.command('RSET', /^250 /);
    }
    await carol.command('MAIL FROM:<carol@elsewhere.example>', /^553 5\.7\.1 /);
    await carol.quit();
  });

  it('refuses relaying without AUTH on the MX listener', async () => {
    const client = await server.client('mx');
    await client.command('MAIL FROM:<alice@localhost>');
    await client.command('RCPT TO:<friend@elsewhere.example>', /^554 5\.7\.1 /);
    await client.quit();
  });
});
