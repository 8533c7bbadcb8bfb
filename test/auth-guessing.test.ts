import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { configFromObject } from '../core/config/load.js';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { testRedis } from './fixtures/redis.js';
import { SmtpTestClient } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * Password guessing that the per-network lockout of auth-file did not stop:
 * many attempts at once from one address, and a few attempts each from many
 * addresses against one login. Each scenario runs with the counters in memory
 * and in Redis (shared by all nodes).
 */

const submission = { name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', auth: true, submission: true, insecureAuth: true };
const PASSWORD = 'correct horse battery';

let servers = 0;

/** A server config; with `redis`, under a key prefix of its own so no test sees another's counters. */
function config(usersFile: string, lockout: Record<string, unknown>, redis?: { url: string; prefix: string }) {
  return {
    listeners: [submission],
    ...(redis ? { redis: { url: redis.url, keyPrefix: `${redis.prefix}${++servers}:` } } : {}),
    plugins: [{ name: 'auth-file', options: { file: usersFile, failureDelay: '50ms', lockout } }, { name: 'relay-access' }, { name: 'queue-spool' }],
  };
}

/** Opens one connection per password from `address`, then sends every AUTH at once; the replies, in order. */
async function authAtOnce(server: TestServer, address: string, login: string, passwords: readonly string[]): Promise<string[]> {
  const clients = await Promise.all(passwords.map(() => server.client('submission', { localAddress: address })));
  clients.forEach((client, i) => client.send(plainAuth(login, passwords[i])));
  const replies = await Promise.all(clients.map((client) => client.reply().then((reply) => reply.raw)));
  for (const client of clients) client.close();
  return replies;
}

/** Replies that show the password was looked at. */
const checked = (replies: readonly string[]) => replies.filter((reply) => /^(235|535) /.test(reply));

for (const store of ['memory', 'redis'] as const) {
  describe(`AUTH guessing (${store} store)`, () => {
    const dir = tempDir('petrel-guess-');
    let redis: Awaited<ReturnType<typeof testRedis>> | undefined;
    let usersFile: string;

    before(async () => {
      if (store === 'redis') redis = await testRedis();
      usersFile = await writeUsers(dir.path, { 'alice@localhost': PASSWORD, 'bob@localhost': PASSWORD });
    });
    after(async () => {
      await redis?.cleanup();
      dir.remove();
    });

    it('counts an attempt when it starts: 40 at once from one address get no more password checks than maxFailures', async () => {
      const server = await startTestServer(config(usersFile, { maxFailures: 5, store }, redis));
      try {
        const passwords = [...Array.from({ length: 39 }, (_, i) => `guess ${i}`), PASSWORD];
        const replies = await authAtOnce(server, '127.0.0.2', 'alice@localhost', passwords);
        assert.ok(checked(replies).length <= 5, `${checked(replies).length} passwords were checked:\n${replies.join('\n')}`);
        for (const reply of replies.filter((r) => !/^(235|535) /.test(r))) {
          assert.match(reply, /^(454|421) 4\.7\.0 Too many failed authentication attempts/);
        }
        // The network is locked now, the right password included.
        const [after] = await authAtOnce(server, '127.0.0.2', 'alice@localhost', [PASSWORD]);
        assert.equal(after, '454 4.7.0 Too many failed authentication attempts from your network; try again later');
      } finally {
        await server.stop();
      }
    });

    it('gives a successful attempt back: logins at once from one address do not lock it out', async () => {
      const server = await startTestServer(config(usersFile, { maxFailures: 3, store }, redis));
      try {
        for (let round = 0; round < 3; round++) {
          const replies = await authAtOnce(server, '127.0.0.3', 'bob@localhost', [PASSWORD, PASSWORD, PASSWORD]);
          assert.deepEqual(replies, Array(3).fill('235 2.7.0 Authentication successful'), `round ${round}`);
        }
      } finally {
        await server.stop();
      }
    });

    it('spaces out guesses against one login from many addresses, and does not slow the real user down', async () => {
      const clock = new ManualClock();
      const lockout = { maxFailures: 5, store, perLogin: { freeFailures: 5, delay: '1m' } };
      const server = await startTestServer(config(usersFile, lockout, redis), { clock });
      try {
        // Alice has logged in from her usual network before.
        assert.deepEqual(await authAtOnce(server, '127.0.1.1', 'alice@localhost', [PASSWORD]), ['235 2.7.0 Authentication successful']);

        // 25 addresses guess 4 times each: under every per-address limit.
        const rounds = await Promise.all(
          Array.from({ length: 25 }, async (_, a) => {
            const client = await server.client('submission', { localAddress: `127.0.0.${10 + a}` });
            const replies: string[] = [];
            for (let g = 0; g < 4; g++) replies.push((await client.command(plainAuth('alice@localhost', `guess ${a}.${g}`), /^\d{3} /)).raw);
            client.close();
            return replies;
          }),
        );
        const replies = rounds.flat();
        assert.equal(checked(replies).length, 6, 'freeFailures guesses, then one per spacing');
        const spaced = replies.filter((reply) => reply.startsWith('454 '));
        assert.equal(spaced.length, 94);
        assert.ok(spaced.every((reply) => /^454 4\.7\.0 Too many failed logins for this account; try again in \d+ (second|minute)s?$/.test(reply)), spaced[0]);

        // From her usual network Alice gets in at once; from a new one she is asked to wait, then gets in.
        assert.deepEqual(await authAtOnce(server, '127.0.1.1', 'alice@localhost', [PASSWORD]), ['235 2.7.0 Authentication successful']);
        const [waiting] = await authAtOnce(server, '127.0.2.1', 'alice@localhost', [PASSWORD]);
        assert.match(waiting, /^454 4\.7\.0 Too many failed logins for this account; try again in/);
        if (store === 'memory') {
          clock.advance(60_001);
          assert.deepEqual(await authAtOnce(server, '127.0.2.1', 'alice@localhost', [PASSWORD]), ['235 2.7.0 Authentication successful']);
        }
        // Another login is not affected.
        assert.deepEqual(await authAtOnce(server, '127.0.2.2', 'bob@localhost', [PASSWORD]), ['235 2.7.0 Authentication successful']);
      } finally {
        await server.stop();
      }
    });
  });
}

describe('AUTH lockouts and a reload', () => {
  it('a reload that builds auth-file again keeps its lockouts', async () => {
    const dir = tempDir('petrel-guess-reload-');
    const usersFile = await writeUsers(dir.path, { 'alice@localhost': PASSWORD });
    const base = config(usersFile, { maxFailures: 2 });
    const server = await startTestServer(base);
    try {
      const client = await server.client('submission', { localAddress: '127.0.0.9' });
      await client.command(plainAuth('alice@localhost', 'guess 1'), /^535 /);
      await client.command(plainAuth('alice@localhost', 'guess 2'), /^421 4\.7\.0 /);
      const before = server.petrel.plugins.plugins.find((plugin) => plugin.name === 'auth-file')?.instance;

      // The same config as startTestServer made of it, but for one auth-file option.
      const changed = {
        ...base,
        server: { hostname: 'mx.petrel.test', dataDir: server.dataDir, localDomains: ['localhost'], shutdownTimeout: '2s' },
        dns: { reverseLookup: false },
        plugins: [{ name: 'auth-file', options: { file: usersFile, failureDelay: '60ms', lockout: { maxFailures: 2 } } }, { name: 'relay-access' }, { name: 'queue-spool' }],
      };
      await server.petrel.reload(configFromObject(changed, server.dataDir));
      const afterReload = server.petrel.plugins.plugins.find((plugin) => plugin.name === 'auth-file')?.instance;
      assert.notEqual(afterReload, before, 'the plugin was built again');

      const [reply] = await authAtOnce(server, '127.0.0.9', 'alice@localhost', [PASSWORD]);
      assert.equal(reply, '454 4.7.0 Too many failed authentication attempts from your network; try again later');
      const elsewhere = await SmtpTestClient.ready(server.port('submission'), { localAddress: '127.0.0.8' });
      await elsewhere.command(plainAuth('alice@localhost', PASSWORD), /^235 /);
      await elsewhere.quit();
    } finally {
      await server.stop();
      dir.remove();
    }
  });
});
