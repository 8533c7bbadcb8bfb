import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { FakeDns } from './harness/fake-dns.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer } from './harness/test-server.js';

describe('the shipped mta.config.yaml', () => {
  it('starts without Redis or network, with its MX and submission plugins, and takes local mail without a DNS query', async () => {
    const shipped = parse(readFileSync(join(process.cwd(), 'mta.config.yaml'), 'utf8')) as Record<string, unknown>;
    assert.equal(shipped.redis, undefined, 'no Redis needed');
    const names = (shipped.plugins as { name: string; enabled?: boolean }[]).filter((p) => p.enabled !== false).map((p) => p.name);
    assert.deepEqual(names, ['helo-check', 'dnsbl', 'recipients', 'mailauth', 'auth-file', 'relay-access', 'queue-spool']);
    const dns = new FakeDns();
    const listeners = (shipped.listeners as Record<string, unknown>[]).map((listener) => ({ ...listener, port: 0 }));
    const server = await startTestServer({ ...shipped, server: { hostname: 'localhost', localDomains: ['localhost'] }, listeners }, { dns });
    try {
      const client = await server.client('mx');
      const reply = await client.sendMail('you@example.org', ['postmaster@localhost'], sampleMessage());
      assert.match(reply.raw, /^250 2\.0\.0 /);
      await client.command('MAIL FROM:<you@example.org>');
      await client.command('RCPT TO:<nobody@localhost>', /^550 5\.1\.1 /);
      await client.command('RCPT TO:<someone@elsewhere.example>', /^554 5\.7\.1 /);
      await client.quit();
      assert.deepEqual(dns.queries, []);
    } finally {
      await server.stop();
    }
  });
});
