import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { SmtpTestClient, dotStuff, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * What the `petrel start` process does about signals, crashes and failed
 * starts: the real CLI in a child process, real sockets, its exit status.
 */
const temp = tempDir('petrel-process-');
after(() => temp.remove());

let runs = 0;

function config(plugins: unknown[] = [], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const server = { hostname: 'mx.petrel.test', dataDir: join(temp.path, `data-${runs++}`), localDomains: ['localhost'], shutdownTimeout: '20s' };
  return {
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
    dns: { reverseLookup: false },
    ...extra,
    server: { ...server, ...(extra.server as object) },
    plugins: [...plugins, { name: 'relay-access' }, { name: 'queue-spool' }],
  };
}

const careless = (options: Record<string, unknown>, entry: Record<string, unknown> = {}) => ({ path: fixturePlugin('careless'), options, ...entry });

/** The exit of a process expected to end by itself; fails with its output if it does not within `ms`. */
async function exitOf(child: ChildPetrel, ms = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`petrel did not exit within ${ms} ms; it wrote:\n${child.output.slice(-3000)}`));
    }, ms);
  });
  try {
    return await Promise.race([child.exited(), late]);
  } finally {
    clearTimeout(timer);
  }
}

const logged = (child: ChildPetrel, pattern: RegExp) => child.logLines.filter((line) => pattern.test(String(line.msg)));

describe('signals', () => {
  it('a second and third stop signal during shutdown are logged and ignored: the message in flight gets its 250, then exit 0', async () => {
    const child = await ChildPetrel.start(temp.path, config());
    const client = await SmtpTestClient.ready(child.port());
    await client.command('MAIL FROM:<a@example.org>');
    await client.command('RCPT TO:<postmaster@localhost>');
    await client.command('DATA', /^354 /);
    const message = dotStuff(sampleMessage({ subject: 'sent across a double Ctrl-C' }));
    client.write(message.slice(0, 40));

    // npm start + Ctrl-C: the terminal signals the process group and npm forwards its own SIGINT.
    child.kill('SIGINT');
    await child.waitForLog((line) => line.msg === 'SIGINT: shutting down');
    child.kill('SIGINT');
    child.kill('SIGTERM');
    await child.waitForLog((line) => /^(SIGINT|SIGTERM) while shutting down \(SIGINT\): ignored/.test(String(line.msg)), 2);

    client.write(message.slice(40));
    client.write('.\r\n');
    await client.expect(/^250 2\.0\.0 Ok: queued as /);
    assert.deepEqual(await exitOf(child), { code: 0, signal: null });
    assert.equal(logged(child, /^stopped$/).length, 1);
  });
});

describe('crashes', () => {
  it('an unhandled promise rejection in a plugin is logged with the plugin name, and the server keeps serving', async () => {
    const child = await ChildPetrel.start(temp.path, config([careless({ rejectFor: 'trigger@localhost' })]));
    try {
      const client = await SmtpTestClient.ready(child.port());
      await client.command('MAIL FROM:<a@example.org>');
      await client.command('RCPT TO:<trigger@localhost>');
      await child.waitForLog((line) => line.code === 'PETREL_UNHANDLED_REJECTION');
      const [line] = child.logLines.filter((l) => l.code === 'PETREL_UNHANDLED_REJECTION');
      assert.equal(line.level, 'error');
      assert.equal(line.plugin, 'careless');
      assert.match(String(line.msg), /^unhandled promise rejection in plugin careless \(a bug; the server keeps running\): the lookup nobody awaited failed$/);
      // Same session, then a new one: the server is still there.
      await client.command('RCPT TO:<postmaster@localhost>');
      await client.command('DATA', /^354 /);
      client.write(`${dotStuff(sampleMessage())}.\r\n`);
      await client.expect(/^250 /);
      await client.quit();
      const later = await SmtpTestClient.ready(child.port());
      assert.match((await later.sendMail('b@example.org', ['postmaster@localhost'], sampleMessage())).raw, /^250 /);
      await later.quit();
    } finally {
      await child.stop();
    }
    assert.deepEqual(await child.exited(), { code: 0, signal: null });
  });

  it('an uncaught exception is logged with the plugin name, open sessions are closed with 421, and the process exits 70', async () => {
    const child = await ChildPetrel.start(temp.path, config([careless({ throwFor: 'trigger@localhost' })]));
    const bystander = await SmtpTestClient.ready(child.port());
    const client = await SmtpTestClient.ready(child.port());
    await client.command('MAIL FROM:<a@example.org>');
    await client.command('RCPT TO:<trigger@localhost>');
    const exit = await exitOf(child);
    assert.deepEqual(exit, { code: 70, signal: null }, child.output);
    const [fatal] = child.logLines.filter((line) => line.code === 'PETREL_UNCAUGHT_EXCEPTION');
    assert.equal(fatal.level, 'fatal');
    assert.equal(fatal.plugin, 'careless');
    assert.match(String(fatal.msg), /^uncaught exception in plugin careless: kaboom in a timer callback; stopping gracefully, then exiting 70/);
    assert.equal(logged(child, /^stopped$/).length, 1, 'the graceful stop ran');
    await bystander.expect(/^421 4\.3\.2 Server shutting down/);
  });

  it('a graceful stop that hangs (a plugin whose close() never ends) is cut short at its deadline, exit 70', async () => {
    const child = await ChildPetrel.start(temp.path, config([careless({ throwFor: 'trigger@localhost', hangClose: true })], { server: { shutdownTimeout: '1s' } }));
    const client = await SmtpTestClient.ready(child.port());
    await client.command('MAIL FROM:<a@example.org>');
    await client.command('RCPT TO:<trigger@localhost>');
    assert.deepEqual(await exitOf(child), { code: 70, signal: null });
    assert.equal(logged(child, /^shutdown did not finish within 11s; exiting$/).length, 1, child.output);
    assert.equal(logged(child, /^stopped$/).length, 0);
  });
});

describe('start', () => {
  it('logs each plugin it started, with its version and how long it took', async () => {
    const child = await ChildPetrel.start(temp.path, config());
    await child.stop();
    for (const name of ['relay-access', 'queue-spool']) {
      const [line] = child.logLines.filter((l) => l.msg === `plugin ${name} started`);
      assert.ok(line, `no "plugin ${name} started" line in:\n${child.output}`);
      assert.equal(line.version, '1.0.0');
      assert.equal(typeof line.ms, 'number');
    }
  });

  it('a plugin whose start() never finishes fails the start after its startTimeout, naming it, exit 69', async () => {
    const child = ChildPetrel.launch(temp.path, config([careless({ hangStart: true }, { startTimeout: '1s' })]));
    assert.deepEqual(await exitOf(child), { code: 69, signal: null });
    assert.equal(
      child.errors,
      'petrel: plugin careless failed to start: start() did not finish within 1 second (raise startTimeout in its config entry if it needs longer) [PETREL_PLUGIN_START]\n',
    );
    assert.equal(logged(child, /^plugin relay-access started$/).length, 0, 'plugins start in config order and the start stopped at careless');
    // Ports are bound before plugins start (so Petrel can switch users first); none served a connection.
    assert.equal(logged(child, /^accepting connections$/).length, 0, 'no listener served a connection');
  });

  it('a plugin whose start() fails: one line, exit 69', async () => {
    const child = ChildPetrel.launch(temp.path, config([{ path: fixturePlugin('scripted'), options: { failStart: true } }]));
    assert.deepEqual(await exitOf(child), { code: 69, signal: null });
    assert.equal(child.errors, 'petrel: plugin scripted failed to start: cannot open the frobnicator [PETREL_PLUGIN_START]\n');
  });
});

describe('start-up failures: one line, and an exit status that says what kind', () => {
  let taken: Server;
  after(() => taken?.close());

  it('an SMTP listener whose port is in use: names the listener, exit 71 (EX_OSERR)', async () => {
    taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as { port: number }).port;
    const child = ChildPetrel.launch(temp.path, { ...config(), listeners: [{ name: 'mx', host: '127.0.0.1', port, tls: 'none' }] });
    assert.deepEqual(await exitOf(child), { code: 71, signal: null });
    assert.equal(
      child.errors,
      `petrel: listener mx cannot listen on 127.0.0.1:${port}: the address is in use: another program listens there (ss -ltnp 'sport = :${port}' shows which) [PETREL_LISTEN_FAILED]\n`,
    );
  });

  it('the admin listener whose port is in use: says it is the admin listener, exit 71', async () => {
    const port = (taken.address() as { port: number }).port;
    const child = ChildPetrel.launch(temp.path, config([], { admin: { host: '127.0.0.1', port } }));
    assert.deepEqual(await exitOf(child), { code: 71, signal: null });
    assert.match(child.errors, new RegExp(`^petrel: the admin listener cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use.* \\[PETREL_LISTEN_FAILED\\]\\n$`));
  });

  it('Redis that does not answer: where it was looked for, without the password, exit 69 (EX_UNAVAILABLE)', async () => {
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve));
    const child = ChildPetrel.launch(temp.path, config([], { redis: { url: `redis://petrel:hunter2-secret@127.0.0.1:${port}` } }));
    assert.deepEqual(await exitOf(child), { code: 69, signal: null });
    assert.equal(
      child.errors,
      `petrel: cannot reach Redis at redis://petrel:[redacted]@127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port} (is it running? check redis: in the config) [PETREL_REDIS_UNREACHABLE]\n`,
    );
    assert.doesNotMatch(child.output, /hunter2/);
  });

  it('a plugin whose options is not a schema: a config error at its entry, exit 78 (EX_CONFIG)', async () => {
    const child = ChildPetrel.launch(temp.path, config([{ path: fixturePlugin('schemaless') }]));
    assert.deepEqual(await exitOf(child), { code: 78, signal: null });
    assert.match(child.errors, /^petrel: configuration has 1 problem:\n {2}\S+\.yaml:\d+:\d+ plugins\[0\]: plugin schemaless: its static `options` is not a zod schema \(write static readonly options = z\.strictObject\(\{ \.\.\. \}\)\)\n$/);
  });

  it('a recipients file that does not exist: refused, exit 66 (EX_NOINPUT); with optional: true a warning and it runs', async () => {
    const file = join(temp.path, 'no-such-recipients');
    const refused = ChildPetrel.launch(temp.path, config([{ name: 'recipients', options: { file } }]));
    assert.deepEqual(await exitOf(refused), { code: 66, signal: null });
    assert.equal(
      refused.errors,
      `petrel: plugin recipients failed to start: recipients file ${file} does not exist: create it (one address a line), or set optional: true in the plugin's options to start without it [PETREL_PLUGIN_START]\n`,
    );

    const tolerant = await ChildPetrel.start(temp.path, config([{ name: 'recipients', options: { file, optional: true } }]));
    await tolerant.stop();
    const [warning] = logged(tolerant, /does not exist \(optional: true\)/);
    assert.equal(warning.level, 'warn');
    assert.equal(warning.msg, `recipients file ${file} does not exist (optional: true): only postmaster@, abuse@ are valid recipients at the local domains until it does; it is read as soon as it appears`);
  });

  it('a config file that does not validate: exit 78', async () => {
    const child = ChildPetrel.launch(temp.path, { ...config(), listeners: [{ name: 'mx', host: '127.0.0.1', port: 'twenty-five' }] });
    assert.deepEqual(await exitOf(child), { code: 78, signal: null });
    assert.match(child.errors, /listeners\[0\]\.port: expected a port number/);
  });
});

describe('open-file limit', () => {
  it('warns at start, with the numbers, when ulimit -n is below what limits.clients can need', async () => {
    const child = ChildPetrel.launch(temp.path, config(), { openFiles: 256 });
    try {
      await child.waitForLog((line) => line.code === 'PETREL_OPEN_FILE_LIMIT', 1, 20_000);
      const [warning] = child.logLines.filter((line) => line.code === 'PETREL_OPEN_FILE_LIMIT');
      assert.equal(warning.level, 'warn');
      assert.equal(warning.soft, 256);
      assert.equal(warning.hard, 256);
      // One listener × 1000 clients × 2 (socket, spool file) + 100 deliveries × 2 + 100.
      assert.equal(warning.needed, 2300);
      assert.match(String(warning.msg), /^the open-file limit is 256 \(hard 256\), but 1000 connections \(limits\.clients of 1 listeners\) and 100 deliveries can need about 2300 descriptors: .*LimitNOFILE=65536/);
      await child.waitForLog((line) => String(line.msg).startsWith('listening on'));
    } finally {
      await child.stop();
    }
  });

  it('says nothing when the limit is enough', async () => {
    const child = await ChildPetrel.start(temp.path, config([], { limits: { clients: 50 } }), {});
    await child.stop();
    assert.equal(child.logLines.filter((line) => line.code === 'PETREL_OPEN_FILE_LIMIT').length, 0);
  });
});
