import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { testRedis } from './fixtures/redis.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/*
 * The rate-limit plugin over real SMTP: every key kind, every count kind and
 * every answer, once with each store. Clients connect from different
 * loopback addresses (127.0.0.2, .3, ...) to be different clients.
 */

const plainAuth = (user: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0secret`).toString('base64')}`;
const RETRY_HINT = /, try again in \d+ (seconds?|minutes?|hours?)$/;

let redis: Awaited<ReturnType<typeof testRedis>>;
let servers = 0;
before(async () => {
  redis = await testRedis();
});
after(() => redis.cleanup());

type Store = 'memory' | 'redis';

async function withLimits(
  store: Store,
  rules: Record<string, unknown>[],
  test: (server: TestServer) => Promise<void>,
  extra: { exempt?: string[]; localDomains?: string[] } = {},
): Promise<void> {
  const server = await startTestServer({
    // Each server counts under a prefix of its own, so tests never share counters.
    ...(store === 'redis' ? { redis: { url: redis.url, keyPrefix: `${redis.prefix}${servers++}:` } } : {}),
    server: { localDomains: extra.localDomains ?? ['localhost'] },
    listeners: [
      { name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true },
      { name: 'other', host: '127.0.0.1', port: 0, tls: 'none' },
    ],
    plugins: [
      { name: 'rate-limit', options: { store, rules, exempt: extra.exempt ?? [] } },
      // Only alice@example.org logs in (any password); every other user name fails with the core's 535.
      { path: fixturePlugin('scripted'), options: { hooks: { auth: { result: 'accept', when: 'alice@example.org' } } } },
      { name: 'relay-access' },
      { name: 'queue-spool' },
    ],
  });
  try {
    await test(server);
  } finally {
    await server.stop();
  }
}

function from(server: TestServer, localAddress: string, options: { ehlo?: string; listener?: string } = {}): Promise<SmtpTestClient> {
  return SmtpTestClient.ready(server.port(options.listener ?? 'mx'), { localAddress, ehlo: options.ehlo });
}

/** The greeting a new connection gets (the connection is left open). */
async function greeting(server: TestServer, localAddress: string, listener = 'mx') {
  const client = await SmtpTestClient.connect(server.port(listener), { localAddress });
  return { client, reply: await client.expect(/^\d{3} /) };
}

async function send(client: SmtpTestClient, sender: string, recipients: string[], body?: string): Promise<string> {
  const reply = await client.sendMail(sender, recipients, sampleMessage({ body }));
  return reply.raw;
}

/** Retries until it succeeds: slots are given back by the disconnect hook, just after the socket closed. */
async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function waitForLog(server: TestServer, fields: Record<string, unknown>, count: number): Promise<void> {
  await eventually(async () => assert.ok(server.logs.find(fields).length >= count, `waiting for ${count} × ${JSON.stringify(fields)}`));
}

for (const store of ['memory', 'redis'] as const) {
  describe(`rate-limit over SMTP, ${store} store`, () => {
    it('connections per ip: the third in a minute gets 421 4.7.0 with a retry hint and is closed; another ip is not affected', async () => {
      await withLimits(store, [{ count: 'connections', key: 'ip', limit: 2, window: '1m' }], async (server) => {
        await from(server, '127.0.0.2');
        await from(server, '127.0.0.2');
        const { client, reply } = await greeting(server, '127.0.0.2');
        assert.match(reply.raw, /^421 4\.7\.0 Too many connections from 127\.0\.0\.2 \(limit 2 per minute\), try again in \d+ seconds$/);
        await client.waitForClose();
        const other = await greeting(server, '127.0.0.3');
        assert.match(other.reply.raw, /^220 /);
      });
    });

    it('connections per network: neighbours share one /24 counter', async () => {
      await withLimits(store, [{ count: 'connections', key: 'network', limit: 2, window: '1m' }], async (server) => {
        await from(server, '127.0.0.2');
        await from(server, '127.0.0.3');
        const { reply } = await greeting(server, '127.0.0.4');
        assert.match(reply.raw, /^421 4\.7\.0 Too many connections from 127\.0\.0\.0\/24 \(limit 2 per minute\)/);
      });
    });

    it('concurrent per ip: a third simultaneous connection is refused, and a slot comes back at disconnect', async () => {
      await withLimits(store, [{ count: 'concurrent', key: 'ip', limit: 2 }], async (server) => {
        const first = await from(server, '127.0.0.2');
        await from(server, '127.0.0.2');
        const { client, reply } = await greeting(server, '127.0.0.2');
        assert.equal(reply.raw, '421 4.7.0 Too many simultaneous connections from 127.0.0.2 (limit 2 at once), try again later');
        await client.waitForClose();
        await first.quit();
        const again = await eventually(async () => {
          const attempt = await greeting(server, '127.0.0.2');
          assert.match(attempt.reply.raw, /^220 /);
          return attempt.client;
        });
        await again.command('EHLO client.example.test', /^250 /);
      });
    });

    it('concurrent per user: counted from the first MAIL after AUTH and released at disconnect', async () => {
      await withLimits(store, [{ count: 'concurrent', key: 'user', limit: 1 }], async (server) => {
        const first = await from(server, '127.0.0.2');
        await first.command(plainAuth('alice@example.org'), /^235 /);
        await first.command('MAIL FROM:<alice@example.org>');
        const second = await from(server, '127.0.0.3');
        await second.command(plainAuth('alice@example.org'), /^235 /);
        const refused = await second.command('MAIL FROM:<alice@example.org>', /^421 /);
        assert.equal(refused.raw, '421 4.7.0 Too many simultaneous connections from alice@example.org (limit 1 at once), try again later');
        await second.waitForClose();
        // Unauthenticated sessions have no user and are not counted.
        const anonymous = await from(server, '127.0.0.4');
        await anonymous.command('MAIL FROM:<someone@example.org>');
        await first.quit();
        await eventually(async () => {
          const third = await from(server, '127.0.0.3');
          await third.command(plainAuth('alice@example.org'), /^235 /);
          await third.command('MAIL FROM:<alice@example.org>', /^250 /).finally(() => third.close());
        });
      });
    });

    it('connections per helo with action reject: EHLO gets 550 5.7.1, another name passes', async () => {
      await withLimits(store, [{ count: 'connections', key: 'helo', limit: 1, window: '1h', action: 'reject' }], async (server) => {
        await from(server, '127.0.0.2', { ehlo: 'Same.Example' });
        const client = await SmtpTestClient.connect(server.port(), { localAddress: '127.0.0.3' });
        await client.expect(/^220 /);
        const refused = await client.command('EHLO same.example', /^550 /);
        assert.match(refused.raw, /^550 5\.7\.1 Too many connections from HELO same\.example \(limit 1 per hour\), try again in \d+ minutes$/);
        await client.command('EHLO different.example', /^250 /);
      });
    });

    it('messages per sender: the third in a minute is deferred at MAIL with 451 4.7.1, whatever the case; other senders pass', async () => {
      await withLimits(store, [{ count: 'messages', key: 'sender', limit: 2, window: '1m' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        assert.match(await send(client, 'a@example.org', ['postmaster@localhost']), /^250 /);
        assert.match(await send(client, 'A@Example.ORG', ['postmaster@localhost']), /^250 /);
        const refused = await client.command('MAIL FROM:<a@example.org>', /^451 /);
        assert.match(refused.raw, /^451 4\.7\.1 Too many messages from <a@example\.org> \(limit 2 per minute\), try again in \d+ seconds$/);
        const seconds = Number(/in (\d+) seconds/.exec(refused.raw)?.[1]);
        assert.ok(seconds > 0 && seconds <= 30, `one message frees up every 30 s, hint was ${seconds} s`);
        assert.match(await send(client, 'b@example.org', ['postmaster@localhost']), /^250 /);
      });
    });

    it('messages per sender domain with action reject: 550 5.7.1; the null sender is not limited', async () => {
      await withLimits(store, [{ count: 'messages', key: 'sender-domain', limit: 1, window: '1m', action: 'reject' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        assert.match(await send(client, 'a@example.org', ['postmaster@localhost']), /^250 /);
        const refused = await client.command('MAIL FROM:<b@EXAMPLE.org>', /^550 /);
        assert.match(refused.raw, /^550 5\.7\.1 Too many messages from example\.org \(limit 1 per minute\)/);
        assert.match(refused.raw, RETRY_HINT);
        assert.match(await send(client, '', ['postmaster@localhost']), /^250 /);
        assert.match(await send(client, '', ['postmaster@localhost']), /^250 /);
      });
    });

    it('messages per user: a submission quota counts authenticated mail only', async () => {
      await withLimits(store, [{ count: 'messages', key: 'user', limit: 1, window: '1h' }], async (server) => {
        const alice = await from(server, '127.0.0.2');
        await alice.command(plainAuth('alice@example.org'), /^235 /);
        assert.match(await send(alice, 'alice@example.org', ['friend@elsewhere.example']), /^250 /);
        const refused = await alice.command('MAIL FROM:<alice@example.org>', /^451 /);
        assert.match(refused.raw, /^451 4\.7\.1 Too many messages from alice@example\.org \(limit 1 per hour\), try again in \d+ minutes$/);
        const anonymous = await from(server, '127.0.0.3');
        assert.match(await send(anonymous, 'x@example.org', ['postmaster@localhost']), /^250 /);
        assert.match(await send(anonymous, 'x@example.org', ['postmaster@localhost']), /^250 /);
      });
    });

    it('recipients per recipient: deferred at RCPT; other recipients of the same message pass', async () => {
      await withLimits(store, [{ count: 'recipients', key: 'recipient', limit: 1, window: '1m' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        assert.match(await send(client, 'a@example.org', ['bob@localhost']), /^250 /);
        await client.command('MAIL FROM:<a@example.org>');
        const refused = await client.command('RCPT TO:<Bob@localhost>', /^451 /);
        assert.match(refused.raw, /^451 4\.7\.1 Too many recipients for <bob@localhost> \(limit 1 per minute\)/);
        await client.command('RCPT TO:<carol@localhost>');
        await client.command('DATA', /^354 /);
        client.write(`${sampleMessage()}.\r\n`);
        await client.expect(/^250 /);
      });
    });

    it('recipients per recipient domain: recipients already accepted in the message count', async () => {
      const localDomains = ['localhost', 'a.test', 'b.test'];
      await withLimits(store, [{ count: 'recipients', key: 'recipient-domain', limit: 2, window: '1m' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        await client.command('MAIL FROM:<s@example.org>');
        await client.command('RCPT TO:<x@a.test>');
        await client.command('RCPT TO:<y@A.test>');
        const third = await client.command('RCPT TO:<z@a.test>', /^451 /);
        assert.match(third.raw, /^451 4\.7\.1 Too many recipients for a\.test \(limit 2 per minute\)/);
        await client.command('RCPT TO:<z@b.test>');
        await client.command('DATA', /^354 /);
        client.write(`${sampleMessage()}.\r\n`);
        await client.expect(/^250 /);
        await client.command('MAIL FROM:<s@example.org>');
        await client.command('RCPT TO:<w@a.test>', /^451 4\.7\.1 /);
        await client.command('RCPT TO:<w@b.test>', /^250 /);
      }, { localDomains });
    });

    it('recipients per sender: every recipient of a message counts', async () => {
      await withLimits(store, [{ count: 'recipients', key: 'sender', limit: 3, window: '1h' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        assert.match(await send(client, 's@example.org', ['a@localhost', 'b@localhost']), /^250 /);
        await client.command('MAIL FROM:<s@example.org>');
        await client.command('RCPT TO:<c@localhost>');
        const refused = await client.command('RCPT TO:<d@localhost>', /^451 /);
        assert.match(refused.raw, /^451 4\.7\.1 Too many recipients from <s@example\.org> \(limit 3 per hour\)/);
      });
    });

    it('messages per recipient domain: a message to two users of one domain counts once', async () => {
      const localDomains = ['localhost', 'a.test', 'b.test'];
      await withLimits(store, [{ count: 'messages', key: 'recipient-domain', limit: 1, window: '1m' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        assert.match(await send(client, 's@example.org', ['x@a.test', 'y@a.test']), /^250 /);
        await client.command('MAIL FROM:<s@example.org>');
        const refused = await client.command('RCPT TO:<x@a.test>', /^451 /);
        assert.match(refused.raw, /^451 4\.7\.1 Too many messages for a\.test \(limit 1 per minute\)/);
        await client.command('RCPT TO:<q@b.test>', /^250 /);
      }, { localDomains });
    });

    it('bytes per sender: counted at the end of DATA; a message that finds the budget spent is deferred after the dot, then MAIL is', async () => {
      await withLimits(store, [{ count: 'bytes', key: 'sender', limit: 2000, window: '1h' }], async (server) => {
        const body = 'x'.repeat(1200);
        const first = await from(server, '127.0.0.2');
        assert.match(await send(first, 's@example.org', ['postmaster@localhost'], body), /^250 /);
        // Both start while the budget still has room (about 1400 of 2000 bytes used).
        const second = await from(server, '127.0.0.3');
        for (const client of [first, second]) {
          await client.command('MAIL FROM:<s@example.org>');
          await client.command('RCPT TO:<postmaster@localhost>');
          await client.command('DATA', /^354 /);
        }
        first.write(`${sampleMessage({ body })}.\r\n`);
        await first.expect(/^250 /);
        second.write(`${sampleMessage({ body })}.\r\n`);
        const late = await second.expect(/^451 /);
        assert.match(late.raw, /^451 4\.7\.1 Too much mail from <s@example\.org> \(limit 2000 bytes per hour\), try again in \d+ minutes$/);
        await first.command('MAIL FROM:<s@example.org>', /^451 4\.7\.1 Too much mail/);
        await first.command('MAIL FROM:<other@example.org>', /^250 /);
      });
    });

    it('listener key with a listeners filter: only that listener is limited', async () => {
      await withLimits(store, [{ count: 'concurrent', key: 'listener', limit: 1, listeners: ['other'] }], async (server) => {
        await from(server, '127.0.0.2', { listener: 'other' });
        const { reply } = await greeting(server, '127.0.0.3', 'other');
        assert.equal(reply.raw, '421 4.7.0 Too many simultaneous connections to this service (limit 1 at once), try again later');
        await from(server, '127.0.0.2');
        await from(server, '127.0.0.3');
      });
    });

    it('auth failures per ip: after 2 failures AUTH is refused with 421 even for a good password', async () => {
      await withLimits(store, [{ count: 'auth-failures', key: 'ip', limit: 2, window: '15m' }], async (server) => {
        const client = await from(server, '127.0.0.2');
        await client.command(plainAuth('mallory'), /^535 /);
        await client.command(plainAuth('mallory'), /^535 /);
        const locked = await client.command(plainAuth('alice@example.org'), /^421 /);
        assert.match(locked.raw, /^421 4\.7\.0 Too many failed logins from 127\.0\.0\.2 \(limit 2 per 15 minutes\), try again in \d+ minutes$/);
        await client.waitForClose();
        const again = await from(server, '127.0.0.2');
        await again.command(plainAuth('alice@example.org'), /^421 4\.7\.0 Too many failed logins/);
        const neighbour = await from(server, '127.0.0.3');
        await neighbour.command(plainAuth('alice@example.org'), /^235 /);
      });
    });

    it('auth failures per user, action defer: the failure before a disconnect counts too; other names are not locked', async () => {
      await withLimits(store, [{ count: 'auth-failures', key: 'user', limit: 2, window: '15m', action: 'defer' }], async (server) => {
        const first = await from(server, '127.0.0.2');
        await first.command(plainAuth('bob'), /^535 /);
        await first.quit();
        await waitForLog(server, { msg: 'AUTH failure counted', user: 'bob' }, 1);
        const second = await from(server, '127.0.0.3');
        await second.command(plainAuth('Bob'), /^535 /);
        const locked = await second.command(plainAuth('bob'), /^451 /);
        assert.match(locked.raw, /^451 4\.7\.1 Too many failed logins for bob \(limit 2 per 15 minutes\)/);
        await second.command(plainAuth('carol'), /^535 /);
        await second.command(plainAuth('alice@example.org'), /^235 /);
      });
    });

    it('exempt networks are never limited', async () => {
      await withLimits(store, [{ count: 'connections', key: 'ip', limit: 1, window: '1m' }], async (server) => {
        for (let i = 0; i < 3; i++) await from(server, '127.0.0.2');
        await from(server, '127.0.0.3');
        const { reply } = await greeting(server, '127.0.0.3');
        assert.match(reply.raw, /^421 4\.7\.0 /);
      }, { exempt: ['127.0.0.2/32'] });
    });
  });
}
