import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { base64, plainAuth, writeUsers } from './fixtures/auth.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { fixturePlugin } from './fixtures/paths.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { testRedis } from './fixtures/redis.js';
import { testCertificate } from './harness/certificates.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/** A submission listener that allows AUTH without TLS for loopback clients, so tests need no handshake. */
const submission = { name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', auth: true, submission: true, insecureAuth: true };

function authFile(file: string, extra: Record<string, unknown> = {}) {
  return { name: 'auth-file', options: { file, failureDelay: '50ms', ...extra } };
}

describe('auth-file', () => {
  const dir = tempDir('petrel-auth-');
  let usersFile: string;
  let server: TestServer;
  const clock = new ManualClock();

  before(async () => {
    usersFile = await writeUsers(dir.path, { 'alice@localhost': 'correct horse battery', carol: 'another secret' });
    server = await startTestServer(
      {
        listeners: [submission],
        plugins: [authFile(usersFile, { lockout: { maxFailures: 3, duration: '10m' } }), { name: 'relay-access' }, { name: 'queue-spool' }],
      },
      { clock },
    );
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  it('accepts AUTH PLAIN and AUTH LOGIN with the password from the file, logins case-insensitive', async () => {
    const client = await server.client('submission');
    const ehlo = await client.command('EHLO client.example', /^250 /);
    assert.match(ehlo.raw, /AUTH PLAIN LOGIN$/m, 'CRAM-MD5 is not offered: the file holds one-way hashes');
    await client.command(plainAuth('Alice@LOCALHOST', 'correct horse battery'), /^235 /);
    await client.quit();

    const login = await server.client('submission');
    await login.command('AUTH LOGIN', /^334 /);
    await login.command(base64('carol'), /^334 /);
    await login.command(base64('another secret'), /^235 /);
    const reply = await login.sendMail('carol@localhost', ['someone@elsewhere.example'], sampleMessage({ from: 'Carol <carol@localhost>' }));
    assert.match(reply.raw, /^250 2\.0\.0 /, 'an authenticated user may relay');
    await login.quit();
  });

  it('answers a wrong password or an unknown user with 535 5.7.8 after the failure delay', async () => {
    const client = await server.client('submission', { localAddress: '127.0.0.2' });
    const started = Date.now();
    const wrong = await client.command(plainAuth('alice@localhost', 'wrong'), /^535 /);
    assert.equal(wrong.raw, '535 5.7.8 Authentication credentials invalid');
    assert.ok(Date.now() - started >= 45, 'the refusal waits for failureDelay');
    const unknown = await client.command(plainAuth('mallory@localhost', 'whatever'), /^535 /);
    assert.equal(unknown.raw, '535 5.7.8 Authentication credentials invalid');
    await client.quit();
  });

  it('locks a client network out after maxFailures, shares the lock across connections, and lets go after the duration', async () => {
    const host = '127.0.0.3';
    const first = await server.client('submission', { localAddress: host });
    await first.command(plainAuth('alice@localhost', 'guess 1'), /^535 /);
    await first.command(plainAuth('alice@localhost', 'guess 2'), /^535 /);
    const locked = await first.command(plainAuth('alice@localhost', 'guess 3'), /^421 /);
    assert.equal(locked.raw, '421 4.7.0 Too many failed authentication attempts; try again later');
    await first.waitForClose();

    const second = await server.client('submission', { localAddress: host });
    const refused = await second.command(plainAuth('alice@localhost', 'correct horse battery'), /^454 /);
    assert.equal(refused.raw, '454 4.7.0 Too many failed authentication attempts from your network; try again later');
    await second.quit();
    assert.equal(server.logs.find({ msg: 'client network locked out after repeated AUTH failures', ip: host }).length, 1);

    const elsewhere = await server.client('submission', { localAddress: '127.0.0.4' });
    await elsewhere.command(plainAuth('alice@localhost', 'correct horse battery'), /^235 /);
    await elsewhere.quit();

    clock.advance(10 * 60_000 + 1);
    const later = await server.client('submission', { localAddress: host });
    await later.command(plainAuth('alice@localhost', 'correct horse battery'), /^235 /);
    await later.quit();
  });

  it('sees users added and removed while running, without a restart', async () => {
    await writeUsers(dir.path, { 'alice@localhost': 'correct horse battery', 'bob@localhost': 'new user password' });
    const client = await server.client('submission', { localAddress: '127.0.0.5' });
    await client.command(plainAuth('bob@localhost', 'new user password'), /^235 /);
    await client.quit();
    const gone = await server.client('submission', { localAddress: '127.0.0.5' });
    await gone.command(plainAuth('carol', 'another secret'), /^535 /);
    await gone.quit();
  });

  it('keeps the last good users when the file is broken, and says where', async () => {
    const good = await writeUsers(dir.path, { 'dave@localhost': 'dave password' }, 'users-broken');
    const broken = await startTestServer({ listeners: [submission], plugins: [authFile(good), { name: 'relay-access' }, { name: 'queue-spool' }] });
    try {
      writeFileSync(good, 'dave@localhost:$scrypt$ln=10,r=8,p=1$bad\n');
      const client = await broken.client('submission');
      await client.command(plainAuth('dave@localhost', 'dave password'), /^235 /);
      await client.quit();
      const error = broken.logs.lines.find((line) => String(line.msg).startsWith('users file not reloaded'));
      assert.match(String(error?.msg), /users-broken:1: expected an scrypt hash/);
    } finally {
      await broken.stop();
    }
  });

  it('refuses to start on a malformed users file, naming file and line', async () => {
    const file = join(dir.path, 'users-bad');
    writeFileSync(file, '# comment\nnobody-without-a-hash\n');
    await assert.rejects(
      startTestServer({ listeners: [submission], plugins: [authFile(file), { name: 'relay-access' }, { name: 'queue-spool' }] }),
      /plugin auth-file failed to start: .*users-bad:2: expected login:hash/,
    );
  });

  it('refuses to start when the users file does not exist, unless it is optional (then it says so)', async () => {
    const missing = join(dir.path, 'no-such-users-file');
    const plugins = (optional: boolean) => [authFile(missing, { optional }), { name: 'relay-access' }, { name: 'queue-spool' }];
    await assert.rejects(startTestServer({ listeners: [submission], plugins: plugins(false) }), (error: Error & { cause?: { code?: string } }) => {
      assert.match(error.message, /plugin auth-file failed to start: users file .*no-such-users-file does not exist: add a user with petrel user add LOGIN .*or set optional: true/);
      assert.equal(error.cause?.code, 'ENOENT', 'the CLI exits 66 (EX_NOINPUT) for it');
      return true;
    });
    const tolerant = await startTestServer({ listeners: [submission], plugins: plugins(true) });
    try {
      const warning = tolerant.logs.lines.find((line) => String(line.msg).includes('no-such-users-file does not exist (optional: true)'));
      assert.equal(warning?.level, 'warn');
      assert.match(String(warning?.msg), /nobody can log in until it does/);
      // Once the file appears, it is read: no restart needed.
      await writeUsers(dir.path, { 'late@localhost': 'a late password' }, 'no-such-users-file');
      const client = await tolerant.client('submission');
      await client.command(plainAuth('late@localhost', 'a late password'), /^235 /);
      await client.quit();
    } finally {
      await tolerant.stop();
    }
  });

  it('works over STARTTLS on a listener that requires it', async () => {
    const certificate = testCertificate('mx.petrel.test');
    const tls = await startTestServer({
      tls: { cert: certificate.certFile, key: certificate.keyFile },
      listeners: [{ name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls-required', auth: true, submission: true }],
      plugins: [authFile(usersFile), { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    try {
      const client = await tls.client('submission');
      await client.startTls();
      await client.command('EHLO client.example', /^250 /);
      await client.command(plainAuth('alice@localhost', 'correct horse battery'), /^235 /);
      await client.quit();
    } finally {
      await tls.stop();
    }
  });
});

describe('auth extension point', () => {
  // With `priority: 10` on auth-file its handlers run at 110, 10 and -90 (an offset to their
  // own 100, 0, -100), so auth-static at 0 is still between the guards.
  for (const priority of [undefined, 10]) {
    const title = priority === undefined ? '' : ` (with priority: ${priority} on auth-file, which moves its three handlers together)`;
    it(`a plugin of your own authenticates between the guards: its failures are delayed and counted too${title}`, async () => {
      const dir = tempDir('petrel-auth-own-');
      const usersFile = await writeUsers(dir.path, { 'alice@localhost': 'correct horse battery' });
      const server = await startTestServer({
        listeners: [submission],
        plugins: [
          { ...authFile(usersFile, { lockout: { maxFailures: 2 } }), priority },
          { path: fixturePlugin('auth-static'), options: { users: { 'api@localhost': 'token-1234' } } },
          { name: 'relay-access' },
          { name: 'queue-spool' },
        ],
      });
      try {
        const client = await server.client('submission', { localAddress: '127.0.0.6' });
        await client.command(plainAuth('api@localhost', 'token-1234'), /^235 /);
        await client.quit();
        const fromFile = await server.client('submission', { localAddress: '127.0.0.6' });
        await fromFile.command(plainAuth('alice@localhost', 'correct horse battery'), /^235 /);
        await fromFile.quit();
        const guesser = await server.client('submission', { localAddress: '127.0.0.7' });
        await guesser.command(plainAuth('api@localhost', 'nope'), /^535 5\.7\.8 /);
        await guesser.command(plainAuth('api@localhost', 'nope again'), /^421 4\.7\.0 /);
        const next = await server.client('submission', { localAddress: '127.0.0.7' });
        await next.command(plainAuth('api@localhost', 'token-1234'), /^454 4\.7\.0 /);
        await next.quit();
      } finally {
        await server.stop();
        dir.remove();
      }
    });
  }
});

describe('auth-file lockout shared through Redis by two Petrel processes', () => {
  it('failures on one node lock the client out on the other', async () => {
    const redis = await testRedis();
    const dir = tempDir('petrel-auth-redis-');
    const usersFile = await writeUsers(dir.path, { 'alice@localhost': 'correct horse battery' });
    const config = (name: string) => ({
      server: { hostname: `${name}.petrel.test`, dataDir: `./data-${name}`, localDomains: ['localhost'], shutdownTimeout: '1s' },
      listeners: [submission],
      dns: { reverseLookup: false },
      redis: { url: redis.url, keyPrefix: redis.prefix },
      logging: { level: 'info' },
      plugins: [authFile(usersFile, { lockout: { maxFailures: 3, store: 'redis' } }), { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    const nodeA = await ChildPetrel.start(dir.path, config('a'));
    const nodeB = await ChildPetrel.start(dir.path, config('b'));
    try {
      const portA = nodeA.port('submission');
      const portB = nodeB.port('submission');
      const onB = await SmtpTestClient.ready(portB);
      await onB.command(plainAuth('alice@localhost', 'correct horse battery'), /^235 /);
      await onB.quit();

      const attacker = await SmtpTestClient.ready(portA);
      await attacker.command(plainAuth('alice@localhost', 'guess 1'), /^535 /);
      await attacker.command(plainAuth('alice@localhost', 'guess 2'), /^535 /);
      await attacker.command(plainAuth('alice@localhost', 'guess 3'), /^421 4\.7\.0 /);

      const lockedOnB = await SmtpTestClient.ready(portB);
      const reply = await lockedOnB.command(plainAuth('alice@localhost', 'correct horse battery'), /^454 /);
      assert.equal(reply.raw, '454 4.7.0 Too many failed authentication attempts from your network; try again later');
      await lockedOnB.quit();
      const keys = await redis.client.keys(`${redis.prefix}auth-file:lock:*`);
      assert.deepEqual(keys, [`${redis.prefix}auth-file:lock:127.0.0.1/32`]);
    } finally {
      await Promise.all([nodeA.stop(), nodeB.stop()]);
      await redis.cleanup();
      dir.remove();
    }
  });
});
