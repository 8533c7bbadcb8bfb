import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authenticate } from 'mailauth';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { eventually } from './harness/eventually.js';
import { FakeDns } from './harness/fake-dns.js';
import { dotStuff, sampleMessage, type SmtpTestClient } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/dkim-rfc8463/${name}`, import.meta.url), 'utf8');
const SIGNED = fixture('signed.eml');
const TAMPERED = fixture('tampered.eml');

const txt = (text: string) => ({ TXT: [[text]] });

/** The DNS of RFC 8463 Appendix A, plus domains for each SPF and DMARC outcome. Clients connect from 127.0.0.1. */
function publicDns(): FakeDns {
  return new FakeDns({
    'brisbane._domainkey.football.example.com': txt('v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo='),
    'test._domainkey.football.example.com': txt(
      'v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB',
    ),
    'football.example.com': txt('v=spf1 ip4:127.0.0.1 -all'),
    '_dmarc.football.example.com': txt('v=DMARC1; p=reject'),
    'spf-fail.example': txt('v=spf1 ip4:192.0.2.1 -all'),
    'spf-soft.example': txt('v=spf1 ip4:192.0.2.1 ~all'),
    'quarantine.example': { MX: [{ exchange: 'mx.quarantine.example', priority: 10 }] },
    '_dmarc.quarantine.example': txt('v=DMARC1; p=quarantine'),
  });
}

/** MAIL, RCPT, DATA and the message as given; returns the client and the reply to the final dot. */
async function send(server: TestServer, from: string, message: string, rcpt = 'suzie@localhost'): Promise<{ client: SmtpTestClient; reply: string }> {
  const client = await server.client('mx', { ehlo: 'mail.football.example.com' });
  await client.command(`MAIL FROM:<${from}>`);
  await client.command(`RCPT TO:<${rcpt}>`);
  await client.command('DATA', /^354 /);
  client.write(dotStuff(message));
  client.write('.\r\n');
  return { client, reply: (await client.reply()).raw };
}

function authResults(message: string): string[] {
  return headerFields(message)
    .filter((field) => /^Authentication-Results:/i.test(field))
    .map((field) => field.slice(field.indexOf(':') + 1).trim());
}

describe('mailauth verification', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer(
      {
        plugins: [
          { name: 'mailauth', options: { skipNetworks: [], spf: { fail: 'reject', softfail: 'tag' } } },
          { name: 'relay-access' },
          { name: 'queue-spool' },
        ],
      },
      { dns: publicDns() },
    );
  });
  after(() => server.stop());

  it('DKIM (Ed25519 and RSA, RFC 8463) and SPF pass: the Authentication-Results header is exact and on top', async () => {
    const { client, reply } = await send(server, 'joe@football.example.com', SIGNED);
    assert.match(reply, /^250 2\.0\.0 /);
    await client.quit();
    const message = await queuedMessageFrom(server, 'joe@football.example.com');
    const fields = headerFields(message);
    assert.equal(
      fields[0],
      'Authentication-Results: mx.petrel.test;' +
        ' dkim=pass header.d=football.example.com header.i=@football.example.com header.s=brisbane header.a=ed25519-sha256 header.b="/gCrinpc";' +
        ' dkim=pass header.d=football.example.com header.i=@football.example.com header.s=test header.a=rsa-sha256 header.b=F45dVWDf;' +
        ' spf=pass (mx.petrel.test: domain of joe@football.example.com designates 127.0.0.1 as permitted sender) smtp.mailfrom=football.example.com;' +
        ' arc=none smtp.remote-ip=127.0.0.1;' +
        ' dmarc=pass (p=REJECT arc=none) policy.dmarc=reject header.from=football.example.com',
    );
    assert.equal(
      fields[1],
      'Received-SPF: pass (mx.petrel.test: domain of joe@football.example.com designates 127.0.0.1 as permitted sender) client-ip=127.0.0.1; envelope-from="joe@football.example.com"; helo=mail.football.example.com;',
    );
    assert.match(fields[2], /^Received: from mail\.football\.example\.com /);
    assert.ok(!message.includes('X-Petrel-'), 'nothing to mark');
  });

  it('a tampered body fails DKIM (dkim=fail), and DMARC still passes on aligned SPF', async () => {
    const { client, reply } = await send(server, 'joe@football.example.com', TAMPERED, 'tampered@localhost');
    assert.match(reply, /^250 /);
    await client.quit();
    const [results] = authResults(await queuedMessageFrom(server, 'joe@football.example.com', 'tampered@localhost'));
    assert.match(results, /dkim=fail \(body hash did not verify\) header\.d=football\.example\.com header\.i=@football\.example\.com header\.s=brisbane/);
    assert.match(results, /dkim=fail \(body hash did not verify\) [^;]* header\.s=test/);
    assert.match(results, /dmarc=pass/);
  });

  it('SPF fail is refused at MAIL FROM with 550 5.7.23 when configured to reject', async () => {
    const client = await server.client();
    const reply = await client.command('MAIL FROM:<forger@spf-fail.example>', /^550 /);
    assert.equal(reply.raw, '550 5.7.23 SPF validation failed: domain of forger@spf-fail.example does not designate 127.0.0.1 as permitted sender');
    await client.quit();
  });

  it('SPF softfail is tagged, SPF none passes untouched; both are reported', async () => {
    const soft = await send(server, 'someone@spf-soft.example', sampleMessage({ from: 'someone@spf-soft.example' }));
    assert.match(soft.reply, /^250 /);
    await soft.client.quit();
    const softMessage = await queuedMessageFrom(server, 'someone@spf-soft.example');
    assert.match(authResults(softMessage)[0], / spf=softfail \(mx\.petrel\.test: domain of transitioning someone@spf-soft\.example does not designate 127\.0\.0\.1 as permitted sender\) smtp\.mailfrom=spf-soft\.example;/);
    assert.ok(headerFields(softMessage).includes('X-Petrel-Warning: spf=softfail (domain of transitioning someone@spf-soft.example does not designate 127.0.0.1 as permitted sender)'));

    const none = await send(server, 'someone@spf-none.example', sampleMessage({ from: 'someone@spf-none.example' }));
    assert.match(none.reply, /^250 /);
    await none.client.quit();
    const noneMessage = await queuedMessageFrom(server, 'someone@spf-none.example');
    assert.match(authResults(noneMessage)[0], / spf=none \(mx\.petrel\.test: spf-none\.example does not designate permitted sender hosts\) smtp\.mailfrom=spf-none\.example;/);
    assert.ok(!noneMessage.includes('X-Petrel-Warning'));
  });

  it('DMARC p=reject is enforced: unaligned mail From a p=reject domain is refused with 550 5.7.26', async () => {
    const forged = sampleMessage({ from: 'Joe <joe@football.example.com>' });
    const { client, reply } = await send(server, 'bounces@spf-none.example', forged, 'victim@localhost');
    assert.equal(reply, '550 5.7.26 Unauthenticated mail refused by the DMARC policy of football.example.com: p=reject');
    await client.quit();
    assert.equal((await server.petrel.queue.list({ sender: 'bounces@spf-none.example' })).length, 0);
  });

  it('DMARC p=quarantine puts an X-Petrel-Quarantine header on the message', async () => {
    const { client, reply } = await send(server, 'list@spf-none.example', sampleMessage({ from: 'news@quarantine.example' }), 'reader@localhost');
    assert.match(reply, /^250 /);
    await client.quit();
    const message = await queuedMessageFrom(server, 'list@spf-none.example');
    assert.ok(headerFields(message).includes('X-Petrel-Quarantine: dmarc=fail (quarantine.example: p=quarantine)'), message);
  });

  it('removes forged Authentication-Results and Received-SPF in our name, keeps other hosts\' and strips sender-made marks', async () => {
    const forged = [
      'Authentication-Results: mx.petrel.test; dkim=pass header.d=bank.example',
      'Authentication-Results: (sneaky) MX.PETREL.TEST 1; dmarc=pass header.from=bank.example',
      'Authentication-Results: "mx.petrel.test"; spf=pass',
      'Authentication-Results: upstream.example; spf=pass smtp.mailfrom=football.example.com',
      'Received-SPF: pass (mx.petrel.test: domain of joe@bank.example designates 127.0.0.1 as permitted sender)',
      'Received-SPF: pass (upstream.example: domain of joe@football.example.com designates 192.0.2.7 as permitted sender)',
      'X-Petrel-Quarantine: nothing to see',
      SIGNED,
    ].join('\r\n');
    const { client, reply } = await send(server, 'joe@football.example.com', forged, 'forged@localhost');
    assert.match(reply, /^250 /);
    await client.quit();
    const message = await queuedMessageFrom(server, 'joe@football.example.com', 'forged@localhost');
    const results = authResults(message);
    assert.equal(results.length, 2, results.join('\n'));
    assert.match(results[0], /^mx\.petrel\.test; dkim=pass /, 'ours, freshly made');
    assert.equal(results[1], 'upstream.example; spf=pass smtp.mailfrom=football.example.com');
    const spfFields = headerFields(message).filter((field) => field.startsWith('Received-SPF:'));
    assert.equal(spfFields.length, 2);
    assert.match(spfFields[0], /^Received-SPF: pass \(mx\.petrel\.test: domain of joe@football\.example\.com designates 127\.0\.0\.1/);
    assert.match(spfFields[1], /upstream\.example/);
    assert.ok(!message.includes('nothing to see'));
    assert.equal(server.logs.find({ msg: 'removed forged authentication headers claiming our name' })[0]?.removed, 4);
  });
});

describe('mailauth policy switches', () => {
  it('with dmarc.enforce off, a p=reject failure is only tagged', async () => {
    const server = await startTestServer(
      { plugins: [{ name: 'mailauth', options: { skipNetworks: [], dmarc: { enforce: false } } }, { name: 'relay-access' }, { name: 'queue-spool' }] },
      { dns: publicDns() },
    );
    try {
      const { client, reply } = await send(server, 'bounces@spf-none.example', sampleMessage({ from: 'joe@football.example.com' }));
      assert.match(reply, /^250 /);
      await client.quit();
      const message = await queuedMessageFrom(server, 'bounces@spf-none.example');
      assert.match(authResults(message)[0], /dmarc=fail \(p=REJECT arc=none\) policy\.dmarc=reject header\.from=football\.example\.com/);
      assert.ok(headerFields(message).includes('X-Petrel-Warning: dmarc=fail (football.example.com: p=reject, not enforced)'));
    } finally {
      await server.stop();
    }
  });

  it('dkim.fail: reject refuses a tampered message with 550 5.7.20, defer gives 451 4.7.20', async () => {
    for (const [action, expected] of [
      ['reject', '550 5.7.20 No passing DKIM signature found (dkim=fail)'],
      ['defer', '451 4.7.20 No passing DKIM signature found (dkim=fail)'],
    ]) {
      const server = await startTestServer(
        { plugins: [{ name: 'mailauth', options: { skipNetworks: [], dkim: { fail: action } } }, { name: 'relay-access' }, { name: 'queue-spool' }] },
        { dns: publicDns() },
      );
      try {
        const { client, reply } = await send(server, 'joe@football.example.com', TAMPERED);
        assert.equal(reply, expected);
        await client.quit();
      } finally {
        await server.stop();
      }
    }
  });

  it('stops verifying when the message hook times out: no DNS query after the 451, the message left as it was', async () => {
    // One DKIM key lookup never answers, like a name server that drops the query.
    const dns = publicDns();
    const hanging = 'brisbane._domainkey.football.example.com';
    const resolve = dns.resolve.bind(dns);
    dns.resolve = (name, type) => (name === hanging ? new Promise(() => undefined) : resolve(name, type));
    const server = await startTestServer(
      { plugins: [{ name: 'mailauth', options: { skipNetworks: [] }, timeouts: { message: '300ms' } }, { name: 'relay-access' }, { name: 'queue-spool' }] },
      { dns },
    );
    try {
      const { client, reply } = await send(server, 'joe@football.example.com', SIGNED);
      assert.match(reply, /^451 4\.3\.0 /);
      const asked = dns.queries.length;
      const abandoned = await eventually(
        () => server.logs.lines.find((line) => line.msg === 'message authentication abandoned: the hook timed out, the client was answered 451 and will try again'),
        'mailauth to give up once its signal fired',
      );
      assert.equal(abandoned.level, 'warn');
      assert.equal(abandoned.plugin, 'mailauth');
      assert.deepEqual(dns.queries.slice(asked), [], 'no lookup (DMARC, ARC) after the timeout');
      assert.ok(!dns.queries.includes('TXT _dmarc.football.example.com'));
      await client.quit();
    } finally {
      await server.stop();
    }
  });

  it('does not verify loopback clients by default, and marks authenticated mail with auth=pass', async () => {
    const dir = tempDir('petrel-mailauth-auth-');
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password' });
    const dns = publicDns();
    const server = await startTestServer(
      {
        listeners: [
          { name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' },
          { name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', auth: true, submission: true, insecureAuth: true },
        ],
        plugins: [
          { name: 'auth-file', options: { file: users, failureDelay: '10ms' } },
          { name: 'mailauth' },
          { name: 'relay-access' },
          { name: 'queue-spool' },
        ],
      },
      { dns },
    );
    try {
      const local = await send(server, 'cron@spf-fail.example', sampleMessage({ from: 'cron@spf-fail.example' }));
      assert.match(local.reply, /^250 /);
      await local.client.quit();
      assert.equal(authResults(await queuedMessageFrom(server, 'cron@spf-fail.example')).length, 0);

      const client = await server.client('submission');
      await client.command(plainAuth('alice@localhost', 'alice password'), /^235 /);
      const reply = await client.sendMail('alice@localhost', ['friend@elsewhere.example'], sampleMessage({ from: 'alice@localhost' }));
      assert.match(reply.raw, /^250 /);
      await client.quit();
      assert.deepEqual(authResults(await queuedMessageFrom(server, 'alice@localhost')), ['mx.petrel.test; auth=pass smtp.auth=alice@localhost']);
      assert.deepEqual(dns.queries, [], 'no DNS for trusted clients');
    } finally {
      await server.stop();
      dir.remove();
    }
  });
});

describe('mailauth and ARC', () => {
  const dir = tempDir('petrel-arc-');
  const sealerKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ourKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyText = (key: typeof sealerKey) => key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const dns = publicDns()
    .set('arc._domainkey.lists.example', txt(`v=DKIM1; k=rsa; p=${publicKeyText(sealerKey)}`))
    .set('seal._domainkey.petrel.test', txt(`v=DKIM1; k=rsa; p=${publicKeyText(ourKey)}`));

  /** The tampered message as a mailing list forwards it: DKIM broken, ARC-sealed by lists.example. */
  async function forwardedByList(): Promise<string> {
    const resolver = (name: string, type: string) => dns.resolve(name, type as 'TXT') as Promise<string[][]>;
    const result = await authenticate(TAMPERED, {
      ip: '127.0.0.1',
      helo: 'mail.football.example.com',
      sender: 'joe@football.example.com',
      mta: 'lists.example',
      resolver,
      disableBimi: true,
      seal: { signingDomain: 'lists.example', selector: 'arc', privateKey: sealerKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) },
    });
    return result.headers + TAMPERED;
  }

  after(() => dir.remove());

  it('a DMARC failure sealed by a trusted forwarder is accepted; the same from an untrusted one is refused', async () => {
    const message = await forwardedByList();
    for (const [trusted, expected] of [
      [['lists.example'], /^250 /],
      [[], /^550 5\.7\.26 /],
    ] as const) {
      const server = await startTestServer(
        { plugins: [{ name: 'mailauth', options: { skipNetworks: [], arc: { trustedSealers: trusted } } }, { name: 'relay-access' }, { name: 'queue-spool' }] },
        { dns },
      );
      try {
        const { client, reply } = await send(server, 'list-bounces@spf-none.example', message);
        assert.match(reply, expected);
        await client.quit();
        if (trusted.length > 0) {
          const [results] = authResults(await queuedMessageFrom(server, 'list-bounces@spf-none.example'));
          assert.match(results, /arc=pass /);
          assert.match(results, /dmarc=fail /);
        }
      } finally {
        await server.stop();
      }
    }
  });

  it('seals verified messages when arc.seal is set, and the seal verifies downstream', async () => {
    const keyFile = join(dir.path, 'arc.pem');
    writeFileSync(keyFile, ourKey.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const server = await startTestServer(
      {
        plugins: [
          { name: 'mailauth', options: { skipNetworks: [], arc: { seal: { domain: 'petrel.test', selector: 'seal', privateKey: keyFile } } } },
          { name: 'relay-access' },
          { name: 'queue-spool' },
        ],
      },
      { dns },
    );
    try {
      const { client, reply } = await send(server, 'joe@football.example.com', SIGNED);
      assert.match(reply, /^250 /);
      await client.quit();
      const message = await queuedMessageFrom(server, 'joe@football.example.com');
      const names = headerFields(message).map((field) => field.slice(0, field.indexOf(':')));
      assert.deepEqual(names.slice(0, 5), ['ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results', 'Authentication-Results', 'Received-SPF']);
      const downstream = await authenticate(message, {
        ip: '192.0.2.50',
        sender: 'joe@football.example.com',
        mta: 'next-hop.example',
        resolver: (name, type) => dns.resolve(name, type as 'TXT') as Promise<string[][]>,
        disableBimi: true,
      });
      assert.ok(downstream.arc);
      assert.equal(downstream.arc.status.result, 'pass');
    } finally {
      await server.stop();
    }
  });

  it('refuses to start when the ARC key file is missing, naming it', async () => {
    await assert.rejects(
      startTestServer({
        plugins: [{ name: 'mailauth', options: { arc: { seal: { domain: 'petrel.test', selector: 'seal', privateKey: join(dir.path, 'missing.pem') } } } }, { name: 'relay-access' }, { name: 'queue-spool' }],
      }),
      /plugin mailauth failed to start: arc\.seal\.privateKey .*missing\.pem: ENOENT/,
    );
  });
});
