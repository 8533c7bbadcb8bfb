import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { testRedis } from './fixtures/redis.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';
import { stableSender, tripletKey } from '../plugins/greylist/triplet.js';

const MINUTE = 60_000;

/** A greylist that does not exempt loopback, so test clients on 127.x are greylisted like strangers. */
const greylist = (extra: Record<string, unknown> = {}) => ({
  name: 'greylist',
  options: { delay: '5m', retryWindow: '1h', lifetime: '1d', whitelist: { networks: [] }, ...extra },
});

async function rcptReply(server: TestServer, from: string, to: string, localAddress = '127.0.0.1'): Promise<string> {
  const client = await server.client('mx', { localAddress });
  await client.command(`MAIL FROM:<${from}>`);
  const reply = await client.command(`RCPT TO:<${to}>`, /^\d{3} /);
  await client.quit();
  return reply.raw;
}

describe('greylist (memory)', () => {
  const clock = new ManualClock();
  let server: TestServer;

  before(async () => {
    server = await startTestServer(
      {
        plugins: [
          greylist({ whitelist: { networks: ['127.0.0.50/32'], senders: ['@friends.example'], recipients: ['postmaster@localhost'] } }),
          { name: 'relay-access', options: { relayNetworks: ['127.0.0.60/32'] } },
          { name: 'queue-spool' },
        ],
      },
      { clock },
    );
  });
  after(() => server.stop());

  it('answers the first attempt with 451 4.7.1, a retry before the delay too, and accepts the retry after it', async () => {
    assert.equal(await rcptReply(server, 'a@sender.example', 'user@localhost'), '451 4.7.1 <user@localhost>: Greylisted, please try again in 300 seconds');
    clock.advance(2 * MINUTE);
    assert.equal(await rcptReply(server, 'a@sender.example', 'user@localhost'), '451 4.7.1 <user@localhost>: Greylisted, please try again in 180 seconds');
    clock.advance(3 * MINUTE);
    assert.match(await rcptReply(server, 'a@sender.example', 'user@localhost'), /^250 /);
    // Remembered: the next message of the triplet passes at once, and a whole message is accepted.
    const client = await server.client();
    const reply = await client.sendMail('a@sender.example', ['user@localhost'], sampleMessage());
    assert.match(reply.raw, /^250 2\.0\.0 /);
    await client.quit();
  });

  it('treats the client /24 as one sender and ignores BATV tags and sub-addresses of the sender', async () => {
    assert.match(await rcptReply(server, 'prvs=1234abcd=b@sender.example', 'user@localhost', '127.0.0.2'), /^451 4\.7\.1 /);
    clock.advance(6 * MINUTE);
    assert.match(await rcptReply(server, 'prvs=99ff00ee=b+bounce@sender.example', 'user@localhost', '127.0.0.3'), /^250 /);
  });

  it('starts over when the retry comes after the retry window', async () => {
    assert.match(await rcptReply(server, 'late@sender.example', 'user@localhost'), /^451 /);
    clock.advance(5 * MINUTE + 61 * MINUTE);
    assert.equal(await rcptReply(server, 'late@sender.example', 'user@localhost'), '451 4.7.1 <user@localhost>: Greylisted, please try again in 300 seconds');
  });

  it('forgets a passed triplet that was not used for its lifetime', async () => {
    assert.match(await rcptReply(server, 'rare@sender.example', 'user@localhost'), /^451 /);
    clock.advance(6 * MINUTE);
    assert.match(await rcptReply(server, 'rare@sender.example', 'user@localhost'), /^250 /);
    clock.advance(25 * 60 * MINUTE);
    assert.match(await rcptReply(server, 'rare@sender.example', 'user@localhost'), /^451 /);
  });

  it('does not greylist whitelisted networks, relay networks, senders or recipients', async () => {
    assert.match(await rcptReply(server, 'new@sender.example', 'user@localhost', '127.0.0.50'), /^250 /, 'whitelisted network');
    assert.match(await rcptReply(server, 'new@sender.example', 'user@localhost', '127.0.0.60'), /^250 /, "relay-access's relay network");
    assert.match(await rcptReply(server, 'pal@friends.example', 'user@localhost'), /^250 /, 'whitelisted sender domain');
    assert.match(await rcptReply(server, 'new@sender.example', 'postmaster@localhost'), /^250 /, 'whitelisted recipient');
  });

  it('leaves mail to other domains to relay-access (554, not 451)', async () => {
    assert.match(await rcptReply(server, 'new@sender.example', 'victim@elsewhere.example'), /^554 5\.7\.1 /);
  });
});

describe('greylist whitelist for authenticated users', () => {
  it('never greylists an authenticated session', async () => {
    const dir = tempDir('petrel-grey-auth-');
    const users = await writeUsers(dir.path, { 'alice@localhost': 'alice password' });
    const server = await startTestServer({
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }],
      plugins: [{ name: 'auth-file', options: { file: users, failureDelay: '10ms' } }, greylist(), { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    try {
      const client = await server.client();
      await client.command(plainAuth('alice@localhost', 'alice password'), /^235 /);
      await client.command('MAIL FROM:<alice@localhost>');
      await client.command('RCPT TO:<bob@localhost>', /^250 /);
      await client.quit();
      assert.match(await rcptReply(server, 'alice@localhost', 'bob@localhost'), /^451 4\.7\.1 /, 'the same triplet without AUTH is greylisted');
    } finally {
      await server.stop();
      dir.remove();
    }
  });
});

describe('greylist (Redis)', () => {
  it('keeps triplets in Redis, so a second server sharing it accepts the retry', async () => {
    const redis = await testRedis();
    const clock = new ManualClock();
    const config = {
      redis: { url: redis.url, keyPrefix: redis.prefix },
      plugins: [greylist({ store: 'redis' }), { name: 'relay-access' }, { name: 'queue-spool' }],
    };
    const first = await startTestServer(config, { clock });
    const second = await startTestServer(config, { clock });
    try {
      assert.match(await rcptReply(first, 'a@sender.example', 'user@localhost'), /^451 4\.7\.1 /);
      assert.equal((await redis.client.keys(`${redis.prefix}greylist:*`)).length, 1);
      clock.advance(5 * MINUTE);
      assert.match(await rcptReply(second, 'a@sender.example', 'user@localhost'), /^250 /);
      const [key] = await redis.client.keys(`${redis.prefix}greylist:*`);
      assert.equal(await redis.client.get(key), 'pass');
      const ttl = await redis.client.pttl(key);
      assert.ok(ttl > 23 * 60 * MINUTE && ttl <= 24 * 60 * MINUTE, `lifetime of a passed triplet, got ${ttl} ms`);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
      await redis.cleanup();
    }
  });

  it('with store: redis and no redis: section, names the problem at the plugin entry', async () => {
    await assert.rejects(
      startTestServer({ plugins: [greylist({ store: 'redis' }), { name: 'relay-access' }, { name: 'queue-spool' }] }),
      /plugin greylist could not be constructed: store: redis needs a redis: section/,
    );
  });
});

describe('greylist triplets', () => {
  it('normalises the sender and groups clients by network', () => {
    assert.equal(stableSender(''), '<>');
    assert.equal(stableSender('PRVS=0123abcd=Bob+x@Example.ORG'), 'bob@example.org');
    assert.equal(tripletKey('192.0.2.77', 'a@b.example', 'User@Localhost', 24, 64), '192.0.2.0/24 a@b.example user@localhost');
    assert.equal(tripletKey('::ffff:192.0.2.77', '', 'u@l', 24, 64), '192.0.2.0/24 <> u@l');
    assert.equal(tripletKey('2001:db8:1:2:3:4:5:6', 'a@b.example', 'u@l', 24, 64), '2001:db8:1:2::/64 a@b.example u@l');
  });
});
