import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { QueueStats } from '../core/control/queue-operations.js';
import type { QueuedMessage } from '../core/queue/contract.js';
import { fixturePlugin } from './fixtures/paths.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../core/cli/petrel.js', import.meta.url));

/**
 * `petrel queue ...` as an operator runs it: the real CLI in a child
 * process, first against a running server (through its control socket),
 * then with the server stopped (on the queue files directly).
 */
describe('petrel queue', () => {
  const data = tempDir('petrel-cli-');
  const configFile = join(data.path, 'mta.config.yaml');
  let sink: SinkServer;
  let server: TestServer;
  let one: string;
  let two: string;

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, 'queue', ...args, '-c', configFile]);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  async function json<T>(...args: string[]): Promise<T> {
    const result = await cli(...args, '--json');
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as T;
  }

  async function send(to: string[]): Promise<string> {
    const client = await server.client();
    const reply = await client.sendMail('sender@origin.test', to, sampleMessage({ subject: `for ${to.join(' ')}` }));
    await client.quit();
    return /queued as (\S+)/.exec(reply.raw)![1];
  }

  async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await condition())) {
      assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  before(async () => {
    // Every delivery is deferred (451), and retries are an hour apart: the queue keeps what we send.
    sink = await SinkServer.start({ rcpt: () => ({ code: 451, text: '4.4.1 Host unavailable' }) });
    const plugins = [
      { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
      { name: 'queue-spool' },
      { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
    ];
    const config = {
      server: { hostname: 'mx.petrel.test', dataDir: data.path, localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      delivery: { retry: ['1h'] },
      plugins,
    };
    writeFileSync(configFile, JSON.stringify(config)); // JSON is YAML
    server = await startTestServer(config);
    one = await send(['a@one.test']);
    two = await send(['b@two.test', 'c@two.test']);
    await until(async () => (await server.petrel.queue.list({ state: 'deferred' })).length === 2, 'both messages to be deferred');
  });

  after(async () => {
    await server.stop().catch(() => undefined);
    await sink.close();
    data.remove();
  });

  it('lists, filters and shows through the running server', async () => {
    const list = await cli('list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+STATE\s+SIZE\s+RECEIVED\s+TRIES\s+NEXT TRY\s+SENDER -> RECIPIENTS$/m);
    assert.match(list.stdout, new RegExp(`^${one} deferred .* <sender@origin\\.test> -> a@one\\.test$`, 'm'));
    // Times say their zone: UTC, as in the log.
    assert.match(list.stdout, new RegExp(`^${one} deferred +\\d+ \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ +1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ <`, 'm'));
    assert.match(list.stdout, /^2 messages$/m);
    const filtered = await json<QueuedMessage[]>('list', '--domain', 'two.test');
    assert.deepEqual(filtered.map((m) => m.id), [two]);
    assert.deepEqual(await json<QueuedMessage[]>('list', '--older-than', '1h'), []);
    const firstPage = await cli('list', '--limit', '1');
    assert.match(firstPage.stdout, new RegExp(`^${one} deferred`, 'm'));
    const next = /^next page: --limit 1 --after (\S+)$/m.exec(firstPage.stdout);
    assert.ok(next, 'a full page says where the next one starts');
    assert.deepEqual((await json<QueuedMessage[]>('list', '--limit', '1', '--after', next[1])).map((m) => m.id), [two]);
    assert.match((await cli('list', '--limit', '1', '--after', `${JSON.stringify(Date.now())}.${two}`)).stdout, /^no more messages$/m);
    assert.equal((await cli('list', '--after', 'nonsense')).code, 64, 'a malformed cursor is a usage error');
    const show = await cli('show', two);
    assert.equal(show.code, 0);
    assert.match(show.stdout, /^state:\s+deferred$/m);
    assert.match(show.stdout, /b@two\.test\s+deferred\s+attempts 1\s+last: 451 4\.4\.1 Host unavailable/);
    assert.match(show.stdout, /^ {2}Subject: for b@two\.test c@two\.test$/m, 'show prints the headers');
    const missing = await cli('show', '000000000-0000000000000000');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no message 000000000-0000000000000000 in the queue/);
    assert.equal((await cli('show', 'not-an-id')).code, 64, 'a malformed ID is a usage error (EX_USAGE)');
  });

  it('counts by state and destination', async () => {
    const stats = await json<QueueStats>('stats');
    assert.deepEqual(stats.states, { active: 0, deferred: 2, held: 0 });
    assert.deepEqual(stats.destinations, [
      { destination: 'two.test', messages: 1, recipients: 2 },
      { destination: 'one.test', messages: 1, recipients: 1 },
    ]);
    const table = await cli('stats');
    assert.match(table.stdout, /^deferred\s+2$/m);
    assert.match(table.stdout, /^two\.test\s+1\s+2$/m);
  });

  it('holds, releases and retries: the server acts at once', async () => {
    assert.match((await cli('hold', one)).stdout, new RegExp(`^${one}: on hold$`, 'm'));
    assert.deepEqual((await json<QueuedMessage[]>('list', '--state', 'held')).map((m) => m.id), [one]);
    assert.match((await cli('release', one)).stdout, /released/);
    assert.match((await cli('retry', '--all')).stdout, /^2 messages scheduled for immediate delivery$/m);
    // Settled again (attempts 2) means the second attempt is over, not just started.
    // (release made `one` due at once too, so it may have had its second attempt before the retry.)
    await until(async () => (await server.petrel.queue.list()).every((m) => m.attempts >= 2), 'both messages to be attempted again');
    assert.equal(sink.rcptCount('b@two.test'), 2);
  });

  it('bounces a message: the sender gets a DSN (queued like any mail)', async () => {
    let bounced = await cli('bounce', one);
    // A message in the middle of a delivery attempt is refused ("busy"); an operator tries again.
    while (bounced.code === 1 && /being delivered right now/.test(bounced.stderr)) bounced = await cli('bounce', one);
    assert.equal(bounced.code, 0, bounced.stderr);
    assert.match(bounced.stdout, /bounced/);
    await until(async () => (await server.petrel.queue.list({ sender: '' })).length === 1, 'the DSN to be queued');
    const [dsn] = await server.petrel.queue.list({ sender: '' });
    assert.deepEqual(dsn.recipients.map((r) => r.address), ['sender@origin.test']);
    assert.equal(dsn.origin.generated, 'dsn');
    assert.equal(await server.petrel.queue.inspect(one), undefined);
    assert.equal((await cli('delete', dsn.id)).code, 0);
  });

  it('works on the queue files when no server is running', async () => {
    await server.stop();
    const list = await json<QueuedMessage[]>('list');
    assert.deepEqual(list.map((m) => m.id), [two]);
    assert.match((await cli('delete', two)).stdout, new RegExp(`^${two}: deleted$`, 'm'));
    assert.match((await cli('list')).stdout, /^queue is empty$/m);
  });

  it('a server whose data directory is too deep for a Unix socket still runs, and says so', async () => {
    const deep = join(data.path, 'x'.repeat(60), 'y'.repeat(60));
    const other = await startTestServer({ server: { hostname: 'mx.petrel.test', dataDir: deep, localDomains: ['localhost'], shutdownTimeout: '1s' } });
    try {
      const warning = other.logs.lines.find((line) => /no control socket/.test(String(line.msg)));
      assert.ok(warning, 'the missing control socket is logged');
      assert.equal(warning.level, 'warn');
      const client = await other.client();
      await client.command('MAIL FROM:<a@example.org>');
      await client.quit();
    } finally {
      await other.stop();
    }
  });
});
