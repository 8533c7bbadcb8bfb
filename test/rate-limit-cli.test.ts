import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { testRedis } from './fixtures/redis.js';
import { attemptMessage } from './harness/send-attempt.js';
import { SmtpTestClient } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';
import { tempDir } from './harness/temp-dir.js';

/** `petrel limits show|reset`, run as the real CLI against the Redis a running server counts in. */

const run = promisify(execFile);
const node = join(process.cwd(), 'node_modules', '.bin', 'node');
const cli = join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js');
const temp = tempDir();
let redis: Awaited<ReturnType<typeof testRedis>>;

const RULES = [
  { name: 'sender-hourly', count: 'messages', key: 'sender', limit: 3, window: '1h' },
  { name: 'domain-daily', count: 'recipients', key: 'sender-domain', limit: 1000, window: '1d' },
  { name: 'per-network', count: 'connections', key: 'network', limit: 100, window: '1m' },
  { name: 'concurrent-ip', count: 'concurrent', key: 'ip', limit: 10 },
];

function config(store: 'memory' | 'redis', dataDir: string) {
  return {
    server: { hostname: 'mx.petrel.test', dataDir, localDomains: ['localhost'] },
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
    dns: { reverseLookup: false },
    ...(store === 'redis' ? { redis: { url: redis.url, keyPrefix: redis.prefix } } : {}),
    plugins: [{ name: 'rate-limit', options: { store, rules: RULES } }, { name: 'relay-access' }, { name: 'queue-spool' }],
  };
}

function configFile(name: string, object: Record<string, unknown>): string {
  const file = join(temp.path, name);
  writeFileSync(file, stringify(object));
  return file;
}

async function petrel(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(node, [cli, ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

let server: TestServer;
let file: string;

before(async () => {
  redis = await testRedis();
  server = await startTestServer(config('redis', join(temp.path, 'server')));
  file = configFile('redis.yaml', config('redis', join(temp.path, 'cli')));
});
after(async () => {
  await server?.stop();
  await redis?.cleanup();
  temp.remove();
});

const send = (sender: string) => attemptMessage(server.port(), sender);

describe('petrel limits', () => {
  it('show: the counters an address is a key of, as a table and as JSON', async () => {
    assert.match(await send('Show@Example.org'), /^250 /);
    assert.match(await send('show@example.org'), /^250 /);
    const table = await petrel('limits', 'show', 'show@example.org', '-c', file);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0], /^RULE\s+COUNTS\s+KEY\s+USED\s+LIMIT\s+FREE AGAIN IN$/);
    assert.match(table.stdout, /^sender-hourly\s+messages\s+sender show@example\.org\s+2\s+3 per hour\s+(39|40)m\d\ds$/m);
    assert.match(table.stdout, /^domain-daily\s+recipients\s+sender-domain example\.org\s+2\s+1000 per day\s+2m\d\ds$/m);
    assert.doesNotMatch(table.stdout, /per-network|concurrent-ip/, 'an address is not an IP');

    const json = await petrel('limits', 'show', 'show@example.org', 'sender-hourly', '--json', '-c', file);
    const reports = JSON.parse(json.stdout) as { rule: string; used: number; limit: number; resetAfterMs: number }[];
    assert.equal(reports.length, 1);
    assert.equal(reports[0].rule, 'sender-hourly');
    assert.equal(reports[0].used, 2);
    assert.equal(reports[0].limit, 3);
    assert.ok(reports[0].resetAfterMs > 20 * 60_000 && reports[0].resetAfterMs <= 40 * 60_000, `2 of 3 per hour frees up in about 40 minutes, got ${reports[0].resetAfterMs}`);
  });

  it('show an IP address: its own counters and its network\'s', async () => {
    const open = await SmtpTestClient.ready(server.port());
    const result = await petrel('limits', 'show', '127.0.0.1', '-c', file);
    await open.quit();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^per-network\s+connections\s+network 127\.0\.0\.0\/24\s+\d+\s+100 per minute/m);
    assert.match(result.stdout, /^concurrent-ip\s+concurrent\s+ip 127\.0\.0\.1\s+1\s+10 at once\s+-$/m);
  });

  it('reset lifts a limit at once: the sender can send again', async () => {
    for (let i = 0; i < 3; i++) assert.match(await send('reset@example.org'), /^250 /);
    assert.match(await send('reset@example.org'), /^451 4\.7\.1 /);
    const reset = await petrel('limits', 'reset', 'reset@example.org', 'sender-hourly', '-c', file);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout.trim(), 'reset sender-hourly (sender reset@example.org, was 3 of 3 per hour)');
    assert.match(await send('reset@example.org'), /^250 /);
    const again = await petrel('limits', 'reset', 'nobody@example.org', 'sender-hourly', '-c', file);
    assert.equal(again.stdout.trim(), 'nothing to reset for nobody@example.org');
  });

  it('says why it cannot help: memory store, unknown rule, plugin not enabled, no value', async () => {
    const memory = await petrel('limits', 'show', 'a@example.org', '-c', configFile('memory.yaml', config('memory', join(temp.path, 'memory'))));
    assert.equal(memory.code, 1);
    assert.match(memory.stderr, /petrel limits: store: memory keeps its counters inside the running server.*use store: redis/);

    const unknown = await petrel('limits', 'show', 'a@example.org', 'no-such-rule', '-c', file);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no rule named "no-such-rule" \(rules: sender-hourly, domain-daily, per-network, concurrent-ip\)/);

    const plain = config('memory', join(temp.path, 'plain'));
    plain.plugins = [{ name: 'relay-access' }, { name: 'queue-spool' }] as typeof plain.plugins;
    const disabled = await petrel('limits', 'show', 'a@example.org', '-c', configFile('plain.yaml', plain));
    assert.equal(disabled.code, 1);
    assert.match(disabled.stdout, /the rate-limit plugin is not enabled/);

    const usage = await petrel('limits', 'show', '-c', file);
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /^petrel: limits show: the VALUE is missing\nusage: petrel limits show\|reset VALUE \[RULE\]/);
  });
});
