import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sendRequireTls, startTlsListener } from './fixtures/require-tls.js';
import { testCertificate } from './harness/certificates.js';
import { afterFirstAttempt, eventually, queueEmpty } from './harness/eventually.js';
import { parseMime } from './harness/mime-parts.js';
import { MxWorld } from './harness/mx-world.js';
import type { SinkMessage } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * relay-mx end to end: mail goes in over SMTP, and out through relay-mx to
 * "MX hosts" that are sink servers on 127.0.0.1, found through a fake DNS
 * (MX, A, TXT, TLSA records) and reached on their own ports (`exchangePorts`).
 */

const SENDER = 'sender@origin.test';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** A world where the sender's own domain has an MX (so DSNs can come back), plus whatever the test adds. */
async function world(): Promise<{ world: MxWorld; origin: Awaited<ReturnType<MxWorld['host']>> }> {
  const made = new MxWorld();
  cleanups.push(() => made.close());
  const origin = await made.host('mx.origin.test');
  made.domain('origin.test', [['mx.origin.test', 10]]);
  return { world: made, origin };
}

async function petrel(made: MxWorld, relayMx: Record<string, unknown> = {}, extra: { server?: Record<string, unknown>; tls?: unknown; listeners?: unknown[] } = {}): Promise<TestServer> {
  const server = await startTestServer(
    {
      delivery: { retry: ['1h'], delayWarningAfter: 0, idlePoll: '1s' },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { name: 'relay-mx', options: made.relayMxOptions(relayMx) },
      ],
      ...extra,
    },
    { dns: made.dns },
  );
  cleanups.push(() => server.stop());
  return server;
}

async function send(server: TestServer, to: string[], options: { subject?: string; mailArgs?: string } = {}): Promise<string> {
  const client = await server.client();
  await client.command(`MAIL FROM:<${SENDER}>${options.mailArgs ? ` ${options.mailArgs}` : ''}`);
  for (const rcpt of to) await client.command(`RCPT TO:<${rcpt}>`);
  await client.command('DATA', /^354 /);
  client.write(sampleMessage({ from: SENDER, to: to.join(', '), subject: options.subject ?? 'relay-mx test' }));
  const reply = await client.command('.', /^250 /);
  await client.quit();
  return /queued as (\S+)/.exec(reply.raw)![1];
}

/** A data dir holding an MTA-STS policy cached by an earlier run (the HTTPS fetch cannot be reached in tests). */
function cachedPolicy(domain: string, policy: { mode: string; mx: string[] }): string {
  const dir = tempDir();
  cleanups.push(async () => dir.remove());
  mkdirSync(join(dir.path, 'relay-mx'), { recursive: true });
  const expires = new Date(Date.now() + 86_400_000).toISOString();
  writeFileSync(join(dir.path, 'relay-mx', 'mta-sts.json'), JSON.stringify({ [domain]: { id: '20260101', maxAge: 86_400, version: 'STSv1', ...policy, expires } }));
  return dir.path;
}

function dsnStatus(report: SinkMessage): Promise<string> {
  return parseMime(report.data).then((dsn) => dsn.parts.find((p) => p.contentType === 'message/delivery-status')?.body ?? '');
}

describe('relay-mx', () => {
  it('tries MX hosts in priority order and moves on after a refused connection and a 421 greeting', async () => {
    const { world: made } = await world();
    await made.deadHost('mx1.remote.test');
    const busy = await made.host('mx2.remote.test', { greeting: { code: 421, text: '4.7.0 Too busy, try later' } });
    const good = await made.host('mx3.remote.test');
    const spare = await made.host('mx4.remote.test');
    // Answered out of order: the priorities decide.
    made.domain('remote.test', [['mx4.remote.test', 40], ['mx2.remote.test', 20], ['mx3.remote.test', 30], ['mx1.remote.test', 10]]);
    const server = await petrel(made);
    const id = await send(server, ['alice@remote.test']);
    await good.waitUntil((messages) => messages.length === 1);
    await queueEmpty(server);
    assert.equal(busy.connections, 1, 'the 421 host was tried');
    assert.equal(busy.messages.length, 0);
    assert.equal(spare.connections, 0, 'the lowest-priority host was not needed');
    assert.deepEqual(good.messages[0].to, ['alice@remote.test']);
    const [delivered] = server.logs.find({ qid: id, msg: 'delivery delivered' });
    assert.match(String(delivered.reply), /^250 /);
  });

  it('falls back to the A record of a domain without MX', async () => {
    const { world: made } = await world();
    const host = await made.host('plain.test');
    const server = await petrel(made);
    await send(server, ['bob@plain.test']);
    await host.waitUntil((messages) => messages.length === 1);
    assert.deepEqual(host.messages[0].to, ['bob@plain.test']);
    assert.ok(made.dns.queries.includes('MX plain.test'), 'MX was asked first');
  });

  it('bounces at once for a null MX (RFC 7505), without retrying', async () => {
    const { world: made, origin } = await world();
    made.domain('nomail.test', [['', 0]]);
    const server = await petrel(made);
    const id = await send(server, ['carol@nomail.test']);
    await origin.waitUntil((messages) => messages.some((m) => m.from === ''));
    const status = await dsnStatus(origin.messages.find((m) => m.from === '')!);
    assert.match(status, /Status: 5\.1\.10/);
    assert.match(status, /null MX/);
    await queueEmpty(server);
    assert.equal(server.logs.find({ qid: id, msg: 'delivery bounced' }).length, 1, 'one attempt, bounced');
  });

  it('keeps one RCPT refused and another accepted apart, with the remote reply for the DSN', async () => {
    const { world: made, origin } = await world();
    const host = await made.host('mx.mixed.test', { rcpt: (address) => (address.startsWith('gone@') ? { code: 550, text: '5.1.1 No such user' } : undefined) });
    made.domain('mixed.test', [['mx.mixed.test', 10]]);
    const server = await petrel(made);
    const id = await send(server, ['gone@mixed.test', 'here@mixed.test']);
    await origin.waitUntil((messages) => messages.some((m) => m.from === ''));
    assert.deepEqual(host.messages[0].to, ['here@mixed.test']);
    const status = await dsnStatus(origin.messages.find((m) => m.from === '')!);
    assert.match(status, /Final-Recipient: rfc822; gone@mixed\.test/);
    assert.match(status, /Diagnostic-Code: smtp; 550 5\.1\.1 No such user/);
    assert.match(status, /Remote-MTA: dns; mx\.mixed\.test/);
    await queueEmpty(server);
    assert.equal(server.logs.find({ qid: id, rcpt: 'here@mixed.test', msg: 'delivery delivered' }).length, 1);
  });

  it('uses STARTTLS when the MX offers it (opportunistic: a self-signed certificate is fine)', async () => {
    const { world: made } = await world();
    const host = await made.host('mx.tls.test', { tls: testCertificate('mx.tls.test') });
    made.domain('tls.test', [['mx.tls.test', 10]]);
    const server = await petrel(made);
    await send(server, ['dave@tls.test']);
    await host.waitUntil((messages) => messages.length === 1);
    assert.equal(host.messages[0].secure, true, 'the message went over TLS');
    const [connected] = server.logs.find({ msg: 'connected to mx.tls.test' });
    assert.match(String(connected.tls), /^TLSv1\.[23] /);
  });

  it('falls back to plaintext when an opportunistic TLS handshake fails, unless told not to', async () => {
    const { world: made } = await world();
    const oldTls = { ...testCertificate('mx.old.test'), maxVersion: 'TLSv1.2' as const };
    const host = await made.host('mx.old.test', { tls: oldTls });
    made.domain('old.test', [['mx.old.test', 10]]);
    const server = await petrel(made, { tls: { minVersion: 'TLSv1.3' } });
    await send(server, ['olga@old.test']);
    await host.waitUntil((messages) => messages.length === 1);
    assert.equal(host.messages[0].secure, false);
    assert.equal(host.connections, 2, 'one connection for the failed handshake, one in plaintext');
    assert.equal(server.logs.find({ msg: 'TLS handshake failed; sending in plaintext (opportunistic TLS)' }).length, 1);

    const strict = await petrel(made, { tls: { minVersion: 'TLSv1.3', plaintextFallback: false } });
    const id = await send(strict, ['otto@old.test']);
    const message = await afterFirstAttempt(strict, id);
    assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 TLS with mx\.old\.test failed/);
    assert.equal(host.messages.length, 1, 'nothing more was sent');
  });

  it('refuses MX hosts on loopback and private addresses unless allowed (bounce, nothing sent)', async () => {
    const { world: made, origin } = await world();
    const host = await made.host('mx.inside.test');
    made.domain('inside.test', [['mx.inside.test', 10]]);
    // Only the sender's domain may use loopback here: a DSN has to get back to the test.
    const server = await petrel(made, { allowLocalDestinations: false });
    const id = await send(server, ['erin@inside.test']);
    const message = await eventually(async () => server.logs.find({ qid: id, msg: 'delivery bounced' })[0], 'the bounce');
    assert.match(String(message.reply), /^550 5\.4\.4 .*loopback/);
    assert.equal(host.connections, 0);
    assert.equal(origin.connections, 0, 'the DSN to the loopback MX of the sender is refused just the same');
  });

  it('reuses a connection for the next message to the same domain, up to maxMessagesPerConnection', async () => {
    const { world: made } = await world();
    const host = await made.host('mx.reuse.test');
    made.domain('reuse.test', [['mx.reuse.test', 10]]);
    const server = await petrel(made, { pool: { maxMessagesPerConnection: 2, idleTimeout: '10s' } });
    for (const user of ['one', 'two', 'three']) {
      await send(server, [`${user}@reuse.test`]);
      await host.waitUntil((messages) => messages.some((m) => m.to.includes(`${user}@reuse.test`)));
    }
    assert.deepEqual(host.messages.map((m) => m.connection), [1, 1, 2]);
    assert.equal(host.connections, 2);
  });

  describe('MTA-STS', () => {
    it('enforce: an MX the policy does not list is never contacted; the mail is deferred', async () => {
      const { world: made } = await world();
      const host = await made.host('mx.sts.test');
      made.domain('sts.test', [['mx.sts.test', 10]]);
      made.dns.set('_mta-sts.sts.test', { TXT: [['v=STSv1; id=20260101']] });
      const server = await petrel(made, {}, { server: { dataDir: cachedPolicy('sts.test', { mode: 'enforce', mx: ['mx.elsewhere.test'] }) } });
      const id = await send(server, ['frank@sts.test']);
      const message = await afterFirstAttempt(server, id);
      assert.equal(message.recipients[0].status, 'deferred');
      assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 no MX of sts\.test is allowed by its MTA-STS policy/);
      assert.equal(host.connections, 0, 'nothing was sent, not even in plaintext');
    });

    it('enforce: a listed MX must offer STARTTLS with a certificate valid for its name', async () => {
      const { world: made } = await world();
      const plain = await made.host('mx.strict.test');
      made.domain('strict.test', [['mx.strict.test', 10]]);
      made.dns.set('_mta-sts.strict.test', { TXT: [['v=STSv1; id=20260101']] });
      const certificate = testCertificate('mx.verified.test');
      const verified = await made.host('mx.verified.test', { tls: certificate });
      made.domain('verified.test', [['mx.verified.test', 10]]);
      made.dns.set('_mta-sts.verified.test', { TXT: [['v=STSv1; id=20260101']] });
      const dataDir = cachedPolicy('strict.test', { mode: 'enforce', mx: ['mx.strict.test'] });
      const cache = join(dataDir, 'relay-mx', 'mta-sts.json');
      const policies = JSON.parse((await import('node:fs')).readFileSync(cache, 'utf8')) as Record<string, unknown>;
      policies['verified.test'] = { ...(policies['strict.test'] as object), mx: ['mx.verified.test'] };
      writeFileSync(cache, JSON.stringify(policies));
      // The sink's self-signed certificate is our "CA" here.
      const server = await petrel(made, { tls: { ca: [certificate.certFile] } }, { server: { dataDir } });
      const refused = await send(server, ['gina@strict.test']);
      await send(server, ['hank@verified.test']);
      await verified.waitUntil((messages) => messages.length === 1);
      assert.equal(verified.messages[0].secure, true);
      const message = await afterFirstAttempt(server, refused);
      assert.equal(message.recipients[0].status, 'deferred');
      assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 TLS with mx\.strict\.test failed/);
      assert.equal(plain.messages.length, 0, 'never sent in plaintext');
    });

    it('testing: a policy mismatch is reported, and the mail still goes', async () => {
      const { world: made } = await world();
      const host = await made.host('mx.trial.test');
      made.domain('trial.test', [['mx.trial.test', 10]]);
      made.dns.set('_mta-sts.trial.test', { TXT: [['v=STSv1; id=20260101']] });
      const server = await petrel(made, {}, { server: { dataDir: cachedPolicy('trial.test', { mode: 'testing', mx: ['mx.elsewhere.test'] }) } });
      await send(server, ['ivy@trial.test']);
      await host.waitUntil((messages) => messages.length === 1);
      assert.ok(server.logs.lines.some((line) => /^MTA-STS policy check failed \(testing mode/.test(String(line.msg))));
    });
  });

  describe('DANE', () => {
    function tlsa(certPem: Buffer, matches: boolean) {
      const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
      const digest = createHash('sha256').update(matches ? spki : Buffer.from('another key')).digest();
      return { TLSA: [{ certUsage: 3, selector: 1, match: 1, data: digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.length) }] };
    }

    it('delivers when the certificate matches the TLSA record, and never sends when it does not', async () => {
      const { world: made } = await world();
      const certificate = testCertificate('mx.dane.test');
      const good = await made.host('mx.dane.test', { tls: certificate });
      const bad = await made.host('mx.forged.test', { tls: certificate });
      made.domain('dane.test', [['mx.dane.test', 10]]);
      made.domain('forged.test', [['mx.forged.test', 10]]);
      // TLSA records live under the port connected to (25 on the Internet; the sink's own here).
      made.dns.set(`_${made.ports['mx.dane.test']}._tcp.mx.dane.test`, tlsa(certificate.cert, true));
      made.dns.set(`_${made.ports['mx.forged.test']}._tcp.mx.forged.test`, tlsa(certificate.cert, false));
      made.dns.sign('dane.test').sign('forged.test');
      const server = await petrel(made, { dane: { enabled: true } });
      await send(server, ['jack@dane.test']);
      const forged = await send(server, ['kate@forged.test']);
      await good.waitUntil((messages) => messages.length === 1);
      assert.equal(good.messages[0].secure, true);
      const message = await afterFirstAttempt(server, forged);
      assert.equal(message.recipients[0].status, 'deferred');
      assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 DANE/);
      assert.equal(bad.messages.length, 0);
    });

    it('uses TLSA records only when the MX, address and TLSA answers are all DNSSEC-validated (RFC 7672 2.2)', async () => {
      const { world: made } = await world();
      const certificate = testCertificate('mx.host.test');
      const host = await made.host('mx.host.test', { tls: certificate });
      // A TLSA record the certificate does not match: where DANE applied, nothing would be sent.
      made.dns.set(`_${made.ports['mx.host.test']}._tcp.mx.host.test`, tlsa(certificate.cert, false));
      made.domain('unsigned-mx.test', [['mx.host.test', 10]]);
      made.dns.sign('host.test');
      made.domain('signed-mx.test', [['mx.host.test', 10]]);
      made.dns.sign('signed-mx.test');
      const server = await petrel(made, { dane: { enabled: true } });

      await send(server, ['lou@unsigned-mx.test']);
      await host.waitUntil((messages) => messages.length === 1);
      assert.equal(host.messages[0].secure, true, 'opportunistic TLS, certificate unchecked');

      const refused = await send(server, ['max@signed-mx.test']);
      const message = await afterFirstAttempt(server, refused);
      assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.5 DANE/, 'signed all the way: the TLSA record applies');
      assert.equal(host.messages.length, 1);
    });

    it('ignores TLSA records that are not validated although the MX and address records are', async () => {
      const { world: made } = await world();
      const certificate = testCertificate('mx.split.test');
      const host = await made.host('mx.split.test', { tls: certificate });
      made.domain('split.test', [['mx.split.test', 10]]);
      made.dns.sign('split.test');
      // The TLSA name sits in a zone of its own that is not signed (a delegation to an unsigned child).
      const tlsaName = `_${made.ports['mx.split.test']}._tcp.mx.split.test`;
      made.dns.set(tlsaName, tlsa(certificate.cert, false)).unsigned(tlsaName);
      const server = await petrel(made, { dane: { enabled: true } });
      await send(server, ['ned@split.test']);
      await host.waitUntil((messages) => messages.length === 1);
      assert.ok(server.logs.lines.some((line) => /TLSA records of .* are not DNSSEC-validated: ignored/.test(String(line.msg))));
    });
  });

  describe('REQUIRETLS (RFC 8689)', () => {
    it('goes only to an MX with a valid certificate that offers REQUIRETLS, and bounces (5.7.30) otherwise', async () => {
      const { world: made, origin } = await world();
      const certificate = testCertificate('mx.secure.test');
      const secure = await made.host('mx.secure.test', { tls: certificate });
      const lacking = await made.host('mx.lacking.test', { tls: testCertificate('mx.lacking.test'), hideRequireTls: true });
      made.domain('secure.test', [['mx.secure.test', 10]]);
      made.domain('lacking.test', [['mx.lacking.test', 10]]);
      // RFC 8689 4.2.1: only an MX from validated records (or listed by MTA-STS) may carry REQUIRETLS mail.
      made.dns.sign('secure.test');
      made.dns.sign('lacking.test');
      const server = await petrel(made, { tls: { ca: [certificate.certFile, testCertificate('mx.lacking.test').certFile] } }, startTlsListener());
      await sendRequireTls(server, SENDER, 'lena@secure.test');
      await secure.waitUntil((messages) => messages.length === 1);
      assert.equal(secure.messages[0].requireTls, true, 'REQUIRETLS was passed on');
      await sendRequireTls(server, SENDER, 'mike@lacking.test');
      await origin.waitUntil((messages) => messages.some((m) => m.from === ''));
      assert.match(await dsnStatus(origin.messages.find((m) => m.from === '')!), /Status: 5\.7\.30/);
      assert.equal(lacking.messages.length, 0);
    });

    it('goes only to an MX from DNSSEC-validated records or listed by an MTA-STS policy (RFC 8689 4.2.1)', async () => {
      const { world: made, origin } = await world();
      const certificates = ['mx.unsigned.test', 'mx.listed.test'].map((name) => testCertificate(name));
      const unsigned = await made.host('mx.unsigned.test', { tls: certificates[0] });
      const listed = await made.host('mx.listed.test', { tls: certificates[1] });
      // Neither domain is signed: a spoofed MX answer could have named either host.
      made.domain('unsigned.test', [['mx.unsigned.test', 10]]);
      made.domain('listed.test', [['mx.listed.test', 10]]);
      made.dns.set('_mta-sts.listed.test', { TXT: [['v=STSv1; id=20260101']] });
      const dataDir = cachedPolicy('listed.test', { mode: 'testing', mx: ['mx.listed.test'] });
      const server = await petrel(made, { tls: { ca: certificates.map((c) => c.certFile) } }, { ...startTlsListener(), server: { dataDir } });
      await sendRequireTls(server, SENDER, 'olga@listed.test');
      // Generous waits: two TLS deliveries and a DSN, on a machine that may be busy.
      await listed.waitUntil((messages) => messages.length === 1, 30_000);
      assert.equal(listed.messages[0].requireTls, true, 'the MTA-STS policy vouches for the MX name');
      await sendRequireTls(server, SENDER, 'paul@unsigned.test');
      await origin.waitUntil((messages) => messages.some((m) => m.from === ''), 30_000);
      const report = await dsnStatus(origin.messages.find((m) => m.from === '')!);
      assert.match(report, /Status: 5\.7\.30/);
      assert.match(report, /neither DNSSEC-validated nor listed by an MTA-STS policy/);
      assert.equal(unsigned.connections, 0, 'the unvouched MX is never contacted');
    });
  });
});
