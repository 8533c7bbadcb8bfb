import assert from 'node:assert/strict';
import { newQueueId } from '../core/queue/queue-id.js';
import { execFile } from 'node:child_process';
import { tracingChannel } from 'node:diagnostics_channel';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { configFromObject } from '../core/config/load.js';
import { REDIS_URL } from './fixtures/redis.js';
import { ChildPetrel, runnableAsRoot } from './harness/child-petrel.js';
import { DedicatedRedis } from './harness/dedicated-redis.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';
import { tempDir } from './harness/temp-dir.js';

const TOKEN = 'test-admin-token-0123456789';

async function http(server: TestServer, path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: any; text: string }> {
  const address = server.petrel.adminAddress;
  assert.ok(address, 'admin listener is up');
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  const response = await fetch(`http://127.0.0.1:${address.port}${path}`, { ...init, headers });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, body, text };
}

/** The value of one sample line of the Prometheus text format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('metrics and the admin API', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ admin: { host: '127.0.0.1', port: 0, token: TOKEN } });
  });
  after(() => server.stop());

  it('/metrics shows the counters moving after real SMTP traffic', async () => {
    const before = (await http(server, '/metrics')).text;
    const client = await server.client();
    await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
    await client.sendMail('b@example.org', ['postmaster@localhost'], sampleMessage());
    await client.command('MAIL FROM:<c@example.org>');
    await client.command('RCPT TO:<someone@elsewhere.example>', /^554 /);
    await client.quit();
    const metrics = await http(server, '/metrics');
    assert.equal(metrics.status, 200);
    const text = metrics.text;
    const grew = (name: string, labels: Record<string, string>, by: number) =>
      assert.equal((sample(text, name, labels) ?? 0) - (sample(before, name, labels) ?? 0), by, `${name} ${JSON.stringify(labels)}`);
    grew('petrel_messages_total', { listener: 'mx', result: 'accepted' }, 2);
    grew('petrel_smtp_replies_total', { hook: 'rcpt', class: '5xx', plugin: 'relay-access' }, 1);
    grew('petrel_smtp_replies_total', { hook: 'rcpt', class: '2xx', plugin: 'relay-access' }, 2);
    grew('petrel_connections_total', { listener: 'mx' }, 1);
    assert.ok((sample(text, 'petrel_message_bytes_total', { listener: 'mx' }) ?? 0) > 0);
    assert.ok((sample(text, 'petrel_hook_duration_seconds_count', { hook: 'rcpt', plugin: 'relay-access' }) ?? 0) >= 3);
    assert.ok((sample(text, 'petrel_queue_messages', { state: 'active' }) ?? 0) >= 2, 'queue depth is read at scrape time');
    assert.ok(sample(text, 'petrel_process_resident_memory_bytes') !== undefined);
  });

  it('/health answers and /ready checks the queue and the spool', async () => {
    assert.deepEqual((await http(server, '/health')).body, { status: 'ok' });
    const ready = await http(server, '/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ready: true, checks: { queue: 'ok', spool: 'ok' } });
  });

  it('the API requires the token', async () => {
    assert.equal((await http(server, '/api/queue')).status, 401);
    assert.equal((await http(server, '/api/queue', { token: 'wrong-token-wrong-token-xx' })).status, 401);
    assert.equal((await http(server, '/api/queue', { token: TOKEN })).status, 200);
  });

  it('drives the queue: list, show, hold, release, retry, delete', async () => {
    const client = await server.client();
    const reply = await client.sendMail('api@example.org', ['postmaster@localhost'], sampleMessage({ subject: 'via the api' }));
    await client.quit();
    const id = reply.raw.split(' ').pop() as string;
    const list = await http(server, '/api/queue?sender=api@example.org', { token: TOKEN });
    assert.deepEqual(list.body.map((m: { id: string }) => m.id), [id]);
    const cursor = `${list.body[0].receivedAt}.${id}`;
    assert.deepEqual((await http(server, `/api/queue?sender=api@example.org&limit=1&after=${cursor}`, { token: TOKEN })).body, [], 'nothing after the last page');
    assert.equal((await http(server, '/api/queue?after=nonsense', { token: TOKEN })).status, 400);
    const shown = await http(server, `/api/queue/${id}`, { token: TOKEN });
    assert.equal(shown.body.message.envelope.from, 'api@example.org');
    assert.match(shown.body.headers, /Subject: via the api/);
    assert.deepEqual((await http(server, `/api/queue/${id}/hold`, { method: 'POST', token: TOKEN })).body, { held: true });
    assert.equal((await http(server, '/api/queue?state=held', { token: TOKEN })).body.length, 1);
    assert.deepEqual((await http(server, `/api/queue/${id}/release`, { method: 'POST', token: TOKEN })).body, { released: true });
    assert.deepEqual((await http(server, `/api/queue/${id}/retry`, { method: 'POST', token: TOKEN })).body, { retried: 1 });
    assert.deepEqual((await http(server, `/api/queue/${id}`, { method: 'DELETE', token: TOKEN })).body, { deleted: true });
    // Gone from the queue, its history stays: how it came in, and what the operator did.
    const gone = await http(server, `/api/queue/${id}`, { token: TOKEN });
    assert.equal(gone.status, 200);
    assert.equal(gone.body.message, undefined);
    assert.deepEqual(
      gone.body.history.filter((r: { t: string }) => r.t === 'received' || r.t === 'operator').map((r: { t: string; op?: string }) => r.op ?? r.t),
      ['received', 'hold', 'release', 'retry', 'delete'],
    );
    assert.equal((await http(server, `/api/queue/${newQueueId()}`, { token: TOKEN })).status, 404);
    assert.equal((await http(server, '/api/queue/not-an-id', { token: TOKEN })).status, 400);
  });

  it('lists plugins with versions and the config in force, secrets redacted', async () => {
    const plugins = await http(server, '/api/plugins', { token: TOKEN });
    assert.deepEqual(plugins.body.map((p: { name: string }) => p.name), ['relay-access', 'queue-journal']);
    const config = await http(server, '/api/config', { token: TOKEN });
    assert.equal(config.body.admin.token, '[redacted]');
    assert.equal(config.body.server.hostname, 'mx.petrel.test');
  });
});

describe('secrets', () => {
  const temp = tempDir();
  after(() => temp.remove());

  /** The shared Redis, reached with a password in the URL (Redis's default user takes any password unless one is set). */
  function redisUrlWithPassword(): { url: string; password: string } {
    const url = new URL(REDIS_URL);
    if (url.password === '') {
      url.username = 'default';
      url.password = 's3cret-redis-pw';
    }
    return { url: url.href, password: decodeURIComponent(url.password) };
  }

  it('/api/config hides the password of redis.url, and /metrics can require the admin token', async () => {
    const redis = redisUrlWithPassword();
    const child = await ChildPetrel.start(temp.path, {
      server: { hostname: 'mx.petrel.test', dataDir: join(temp.path, 'data'), localDomains: ['localhost'] },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      redis: { url: redis.url, keyPrefix: `petrel-test:${process.pid}:secrets:` },
      admin: { host: '127.0.0.1', port: 0, token: TOKEN, metricsAuth: 'token' },
      plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }],
    });
    try {
      await child.waitForLog((line) => String(line.msg).startsWith('admin API listening on'));
      const port = child.logLines.find((line) => String(line.msg).startsWith('admin API listening on'))?.port as number;
      const get = (path: string, token?: string) => fetch(`http://127.0.0.1:${port}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

      const config = await get('/api/config', TOKEN);
      const text = await config.text();
      assert.equal(config.status, 200);
      assert.ok(!text.includes(redis.password), 'the Redis password is not shown');
      const shown = (JSON.parse(text) as { redis: { url: string } }).redis.url;
      assert.equal(shown, redis.url.replace(`:${encodeURIComponent(redis.password)}@`, ':[redacted]@'));

      assert.equal((await get('/metrics')).status, 401);
      assert.equal((await get('/metrics', 'wrong-token-wrong-token-xx')).status, 401);
      const metrics = await get('/metrics', TOKEN);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^# TYPE petrel_connections_total counter$/m);
      assert.equal((await get('/health')).status, 200, '/health stays open for orchestrators');
    } finally {
      await child.stop();
    }
  });

  it('metricsAuth: token without a token is a config error', () => {
    assert.throws(
      () => configFromObject({ listeners: [{ name: 'mx', port: 0, tls: 'none' }], admin: { port: 0, token: '', metricsAuth: 'token' } }),
      /admin\.metricsAuth: metricsAuth: token needs admin\.token \(it is unset or empty\)/,
    );
  });

  it('the control socket is 0600 from the moment it exists, not only after a chmod', async () => {
    // net.Server.listen() reports here the moment the socket is bound, before any listen callback runs.
    const modes: number[] = [];
    const listens = tracingChannel('net.server.listen');
    const subscriber = {
      start: () => undefined,
      end: () => undefined,
      asyncStart: () => undefined,
      error: () => undefined,
      asyncEnd: (event: unknown) => {
        const address = (event as { server?: { address(): unknown } }).server?.address();
        if (typeof address === 'string' && address.endsWith('control.sock')) modes.push(statSync(address).mode & 0o777);
      },
    };
    listens.subscribe(subscriber);
    try {
      const server = await startTestServer();
      await server.stop();
    } finally {
      listens.unsubscribe(subscriber);
    }
    assert.deepEqual(modes.map((mode) => mode.toString(8)), ['600']);
  });
});

describe('readiness', () => {
  it('goes false when Redis is stopped, and true again when it is back', async () => {
    const redis = await DedicatedRedis.start();
    const server = await startTestServer({ admin: { host: '127.0.0.1', port: 0 }, redis: { url: redis.url, keyPrefix: `petrel-test:${process.pid}:` } });
    try {
      assert.equal((await http(server, '/ready')).status, 200);
      await redis.stop();
      const down = await http(server, '/ready');
      assert.equal(down.status, 503);
      assert.equal(down.body.ready, false);
      assert.match(down.body.checks.redis, /^failing/);
      assert.equal(down.body.checks.queue, 'ok');
      await redis.restart();
      const deadline = Date.now() + 10_000;
      while ((await http(server, '/ready')).status !== 200) {
        assert.ok(Date.now() < deadline, 'ready again after Redis came back');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await server.stop();
      await redis.stop();
    }
  });
});

describe('live reload (SIGHUP and petrel reload)', () => {
  const temp = tempDir();
  after(() => temp.remove());
  const examplePlugin = fileURLToPath(new URL('../examples/sender-blocklist/index.js', import.meta.url));

  function config(extraPlugins: unknown[] = []) {
    return {
      server: { hostname: 'mx.petrel.test', dataDir: join(temp.path, 'data'), localDomains: ['localhost'], shutdownTimeout: '5s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      plugins: [...extraPlugins, { name: 'relay-access' }, { name: 'queue-spool' }],
    };
  }

  it('a valid change applies to new sessions while a session opened before it completes on the old config', async () => {
    const child = await ChildPetrel.start(temp.path, config());
    const file = child.configFile;
    try {
      const early = await SmtpTestClient.ready(child.port());
      await early.command('MAIL FROM:<someone@blocked.example>');
      writeFileSync(file, stringify(runnableAsRoot(config([{ path: examplePlugin, options: { domains: ['blocked.example'] } }]))));
      child.kill('SIGHUP');
      await child.waitForLog((line) => line.msg === 'configuration reloaded');
      const late = await SmtpTestClient.ready(child.port());
      const refused = await late.command('MAIL FROM:<someone@blocked.example>', /^550 /);
      assert.equal(refused.raw, '550 5.7.1 Mail from your domain is not accepted here');
      await late.quit();
      // The session from before the reload finishes on the old config: no blocklist.
      await early.command('RCPT TO:<postmaster@localhost>');
      await early.command('DATA', /^354 /);
      early.write(`${sampleMessage()}.\r\n`);
      await early.expect(/^250 2\.0\.0 Ok: queued as /);
      await early.quit();
    } finally {
      child.kill('SIGTERM');
      await child.exited();
    }
  });

  it('a broken config keeps the old one and logs why; petrel reload reports the same', async () => {
    const child = await ChildPetrel.start(temp.path, config());
    const file = child.configFile;
    const good = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, good.replace('tls: none', 'tls: sometimes'));
      child.kill('SIGHUP');
      await child.waitForLog((line) => String(line.msg).startsWith('reload refused'));
      const [refusal] = child.logLines.filter((line) => String(line.msg).startsWith('reload refused'));
      assert.match(String(refusal.msg), /listeners\[0\]\.tls: expected one of/);
      const client = await SmtpTestClient.ready(child.port());
      await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
      await client.quit();

      const node = join(process.cwd(), 'node_modules', '.bin', 'node');
      const cli = join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js');
      const refused = await promisify(execFile)(node, [cli, 'reload', '-c', file]).catch((error: { code: number; stderr: string }) => error);
      assert.equal((refused as { code: number }).code, 78, 'a config error: EX_CONFIG');
      // The CLI reads the file first, so a broken one is reported with its line before the server is asked.
      assert.match((refused as { stderr: string }).stderr, /listeners\[0\]\.tls: expected one of/);

      writeFileSync(file, good.replace('shutdownTimeout: 5s', 'shutdownTimeout: 6s'));
      const restartOnly = await promisify(execFile)(node, [cli, 'reload', '-c', file]).catch((error: { code: number; stderr: string }) => error);
      assert.equal((restartOnly as { code: number }).code, 1, 'the server said no');
      assert.match((restartOnly as { stderr: string }).stderr, /server\.shutdownTimeout: changing this needs a restart/);

      writeFileSync(file, good);
      const ok = await promisify(execFile)(node, [cli, 'reload', '-c', file]);
      assert.match(ok.stdout, /reloaded; plugins now: relay-access@1\.0\.0, queue-spool@1\.0\.0/);
    } finally {
      child.kill('SIGTERM');
      await child.exited();
    }
  });
});

describe('docs/admin-api.yaml', () => {
  it('is valid YAML and documents every route the admin server answers', async () => {
    const { parse } = await import('yaml');
    const spec = parse(readFileSync(join(process.cwd(), 'docs', 'admin-api.yaml'), 'utf8')) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.match(spec.openapi, /^3\./);
    const documented = Object.entries(spec.paths).flatMap(([path, methods]) => Object.keys(methods).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`));
    for (const route of [
      'GET /health', 'GET /ready', 'GET /metrics', 'GET /api/queue', 'GET /api/queue/stats', 'POST /api/queue/retry-all',
      'GET /api/queue/{id}', 'DELETE /api/queue/{id}', 'POST /api/queue/{id}/retry', 'POST /api/queue/{id}/hold',
      'POST /api/queue/{id}/release', 'POST /api/queue/{id}/bounce', 'GET /api/plugins', 'GET /api/config', 'POST /api/reload',
      'GET /api/queue/{id}/raw', 'POST /api/queue/bulk', 'GET /api/why', 'GET /api/activity', 'GET /api/trace/server', 'GET /api/trace/client',
      'GET /api/trace/watchers', 'GET /api/session', 'POST /api/session', 'DELETE /api/session', 'GET /',
    ]) {
      assert.ok(documented.includes(route), `${route} is not in docs/admin-api.yaml`);
    }
  });
});

describe('plugin metrics', () => {
  it('rate-limit hits show at /metrics through the injected Metrics service', async () => {
    const server = await startTestServer({
      admin: { host: '127.0.0.1', port: 0 },
      plugins: [
        { name: 'rate-limit', options: { rules: [{ name: 'one-per-sender', count: 'messages', key: 'sender', limit: 1, window: '1h' }] } },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
    try {
      const client = await server.client();
      await client.sendMail('busy@example.org', ['postmaster@localhost'], sampleMessage());
      await client.command('MAIL FROM:<busy@example.org>', /^4\d\d /);
      await client.quit();
      const text = (await http(server, '/metrics')).text;
      assert.equal(sample(text, 'petrel_rate_limit_hits_total', { rule: 'one-per-sender', count: 'messages' }), 1);
    } finally {
      await server.stop();
    }
  });
});
