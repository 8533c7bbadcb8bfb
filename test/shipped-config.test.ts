import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { FakeDns } from './harness/fake-dns.js';
import { waitForMail } from './harness/maildir.js';
import { MxWorld } from './harness/mx-world.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer } from './harness/test-server.js';

type PluginEntry = { name: string; enabled?: boolean; options?: Record<string, unknown> };

/** The shipped file as a config object, every listener (the admin one too) on port 0. */
function shippedConfig(): { config: Record<string, unknown>; plugins: PluginEntry[]; listeners: Record<string, unknown>[] } {
  const shipped = parse(readFileSync(join(process.cwd(), 'mta.config.yaml'), 'utf8')) as Record<string, unknown>;
  const config = shipped.admin ? { ...shipped, admin: { ...(shipped.admin as object), port: 0 } } : shipped;
  const listeners = (shipped.listeners as Record<string, unknown>[]).map((listener) => ({ ...listener, port: 0 }));
  return { config, plugins: shipped.plugins as PluginEntry[], listeners };
}

describe('the shipped mta.config.yaml', () => {
  it('starts without Redis or network, with its MX, submission and delivery plugins, and takes local mail without a DNS query', async () => {
    const { config, plugins, listeners } = shippedConfig();
    assert.equal(config.redis, undefined, 'no Redis needed');
    const names = plugins.filter((p) => p.enabled !== false).map((p) => p.name);
    assert.deepEqual(names, ['helo-check', 'dnsbl', 'recipients', 'mailauth', 'auth-file', 'relay-access', 'queue-journal', 'routing', 'deliver-maildir', 'relay-mx']);
    const dns = new FakeDns();
    const server = await startTestServer({ ...config, server: { hostname: 'localhost', localDomains: ['localhost'] }, listeners }, { dns });
    try {
      const { limits } = server.petrel.config;
      assert.ok(limits.clientsPerAddress > 0 && limits.clientsPerNetwork > 0, 'a share of clients per address and network');
      const client = await server.client('mx');
      const message = sampleMessage({ subject: 'lands in the maildir' });
      const reply = await client.sendMail('you@example.org', ['postmaster@localhost'], message);
      assert.match(reply.raw, /^250 2\.0\.0 /);
      await client.command('MAIL FROM:<you@example.org>');
      await client.command('RCPT TO:<nobody@localhost>', /^550 5\.1\.1 /);
      await client.command('RCPT TO:<someone@elsewhere.example>', /^554 5\.7\.1 /);
      await client.quit();
      const [stored] = await waitForMail(join(server.dataDir, 'maildir', 'postmaster'));
      assert.ok(stored.startsWith('Return-Path: <you@example.org>\r\nDelivered-To: postmaster@localhost\r\n'));
      assert.ok(stored.endsWith(message), 'the message as sent, after our trace headers');
      assert.deepEqual(dns.queries, []);
    } finally {
      await server.stop();
    }
  });

  it('a login made with petrel user add on a local domain is a mailbox: its mail is accepted and delivered', async () => {
    const { config, listeners } = shippedConfig();
    const dir = tempDir();
    // The shipped file as it is, beside its own ./data, with the ports free for a test.
    const configFile = join(dir.path, 'mta.config.yaml');
    writeFileSync(configFile, stringify({ ...config, listeners }));
    try {
      const adding = execFile(process.execPath, [PETREL_CLI, 'user', 'add', 'you@localhost', '--password-stdin', '-c', configFile]);
      adding.stdin?.end('a long password\n');
      let stdout = '';
      adding.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      const [code] = (await once(adding, 'close')) as [number];
      assert.equal(code, 0);
      assert.match(stdout, /^added you@localhost \(.*data\/users\)$/m);
      const server = await startTestServer(
        { ...config, server: { ...(config.server as object), dataDir: join(dir.path, 'data') }, listeners },
        { dns: new FakeDns(), baseDir: dir.path },
      );
      try {
        const client = await server.client('mx');
        const message = sampleMessage({ subject: 'for the new login', to: 'you@localhost' });
        assert.match((await client.sendMail('friend@example.org', ['you@localhost'], message)).raw, /^250 2\.0\.0 /);
        await client.quit();
        const [stored] = await waitForMail(join(dir.path, 'data', 'maildir', 'you'));
        assert.ok(stored.endsWith(message));
      } finally {
        await server.stop();
      }
    } finally {
      dir.remove();
    }
  });

  it('relays what an authenticated user submits to the recipient domain’s MX', async () => {
    const { config, plugins, listeners } = shippedConfig();
    const world = new MxWorld();
    const mx = await world.host('mx.example.net');
    world.domain('example.net', [['mx.example.net', 10]]);
    // The one change: relay-mx may reach this "Internet", which lives on loopback here.
    const testPlugins = plugins.map((p) => (p.name === 'relay-mx' ? { ...p, options: world.relayMxOptions(p.options) } : p));
    const dataDir = tempDir();
    await writeUsers(dataDir.path, { 'you@localhost': 'a long password' });
    const server = await startTestServer(
      { ...config, server: { hostname: 'localhost', localDomains: ['localhost'], dataDir: dataDir.path }, listeners, plugins: testPlugins },
      { dns: world.dns },
    );
    try {
      const client = await server.client('submission');
      await client.startTls({ rejectUnauthorized: false });
      await client.command('EHLO client.example');
      await client.command(plainAuth('you@localhost', 'a long password'), /^235 /);
      const reply = await client.sendMail('you@localhost', ['friend@example.net'], sampleMessage({ from: 'you@localhost', to: 'friend@example.net' }));
      assert.match(reply.raw, /^250 /);
      // The submission profile holds users to their own addresses, in the header too.
      const forged = await client.sendMail('you@localhost', ['friend@example.net'], sampleMessage({ from: 'Bob <bob@localhost>', to: 'friend@example.net' }));
      assert.equal(forged.raw, '550 5.7.1 From: address <bob@localhost> is not owned by user you@localhost');
      await client.command('MAIL FROM:<>');
      await client.command('RCPT TO:<friend@example.net>', /^550 5\.7\.1 /);
      await client.quit();
      await mx.waitUntil((messages) => messages.length === 1);
      assert.deepEqual(mx.messages[0].to, ['friend@example.net']);
      assert.equal(mx.messages[0].from, 'you@localhost');
    } finally {
      await server.stop();
      await world.close();
      dataDir.remove();
    }
  });
});
