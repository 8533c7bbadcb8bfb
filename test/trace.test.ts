import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { get, request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { fixturePlugin } from './fixtures/paths.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import { sparePort } from './harness/ports.js';
import { SinkServer } from './harness/sink-server.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const run = promisify(execFile);
const TOKEN = 'trace-test-token-0123456789';
const PASSWORD = 'open-sesame-42';

/** `petrel trace ...` as an operator runs it: its stdout, line by line, and whether it has exited. */
class TraceProcess {
  readonly lines: string[] = [];
  exited: number | null | undefined;
  readonly #child: ChildProcessWithoutNullStreams;

  constructor(args: string[], configFile: string) {
    this.#child = spawn(process.execPath, [PETREL_CLI, 'trace', ...args, '-c', configFile]);
    let partial = '';
    this.#child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.lines.push(`stderr: ${chunk}`));
    this.#child.on('exit', (code) => {
      this.exited = code;
    });
  }

  stop(): void {
    if (this.exited === undefined) this.#child.kill('SIGINT');
  }
}

/** Sends one message with swaks from a given loopback address, authenticating with AUTH PLAIN. */
async function swaks(port: number, from: string, localAddress: string): Promise<string> {
  const { stdout } = await run('swaks', [
    '--server', `127.0.0.1:${port}`, '--local-interface', localAddress, '--helo', `client-${localAddress}.test`,
    '--from', from, '--to', 'someone@far.test', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', PASSWORD,
    '--body', 'Secret body text that must never be traced', '--hide-all',
  ]).catch((error: { stdout: string; stderr: string }) => {
    throw new Error(`swaks failed: ${error.stdout} ${error.stderr}`);
  });
  return stdout;
}

function watchers(port: number): Promise<{ id: number; side: string; lost: number }[]> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/api/trace/watchers', headers: { authorization: `Bearer ${TOKEN}` } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(JSON.parse(body) as { id: number; side: string; lost: number }[]));
    })
      .on('error', reject)
      .end();
  });
}

describe('petrel trace', () => {
  const data = tempDir('petrel-trace-');
  const configFile = join(data.path, 'mta.config.yaml');
  let sink: SinkServer;
  let server: TestServer;
  let adminPort: number;

  before(async () => {
    sink = await SinkServer.start();
    adminPort = await sparePort();
    const config = {
      server: { hostname: 'mx.petrel.test', dataDir: data.path, localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true, submission: true }],
      dns: { reverseLookup: false },
      admin: { host: '127.0.0.1', port: adminPort, token: TOKEN },
      plugins: [
        { path: fixturePlugin('auth-static'), options: { users: { alice: PASSWORD } } },
        { name: 'relay-access', options: { senderLogins: { '@sender.test': ['alice'] } } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
      ],
    };
    writeFileSync(configFile, JSON.stringify(config));
    server = await startTestServer(config);
  });

  after(async () => {
    await server.stop();
    await sink.close();
    data.remove();
  });

  it('shows a swaks session line by line, only the one from the traced network, without credentials or body', async () => {
    const trace = new TraceProcess(['server', '--source', '127.0.0.2/32', '--only-one'], configFile);
    try {
      await eventually(async () => (await watchers(adminPort)).some((w) => w.side === 'server'), 'the trace to start watching');
      const port = server.port('submission');
      await swaks(port, 'other@sender.test', '127.0.0.3');
      await swaks(port, 'traced@sender.test', '127.0.0.2');
      await eventually(() => trace.exited !== undefined, 'the only-one trace to end after its session', 15_000);
    } finally {
      trace.stop();
    }
    const output = trace.lines.join("\n");
    assert.equal(trace.exited, 0, output);
    assert.doesNotMatch(output, /127\.0\.0\.3|other@sender\.test/, 'the session from another network was not traced');
    // The conversation, in order, each line timestamped and tagged with the session.
    const expected = [
      /\* connection from 127\.0\.0\.2:\d+ on submission/,
      /S: 220 mx\.petrel\.test ESMTP/,
      /C: EHLO client-127\.0\.0\.2\.test/,
      /S: 250-mx\.petrel\.test/,
      /C: AUTH PLAIN \*\*\*/,
      /~ auth auth-static: accept/,
      /S: 235 /,
      /C: MAIL FROM:<traced@sender\.test>/,
      /S: 250 /,
      /C: RCPT TO:<someone@far\.test>/,
      /~ rcpt relay-access: accept/,
      /S: 250 /,
      /C: DATA/,
      /S: 354 /,
      /\* message received: \d+ bytes/,
      /S: 250 2\.0\.0 Ok: queued as /,
      /C: QUIT/,
      /S: 221 /,
      /\* closed/,
    ];
    let from = 0;
    for (const pattern of expected) {
      const index = trace.lines.findIndex((line, i) => i >= from && pattern.test(line));
      assert.ok(index >= 0, `no line matching ${pattern} after line ${from} in:\n${output}`);
      assert.match(trace.lines[index], /^\d{2}:\d{2}:\d{2}\.\d{3} \[[0-9a-z]+\] /, 'each line starts with its time and session');
      from = index + 1;
    }
    assert.ok(!output.includes(PASSWORD) && !output.includes(Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')), 'no credentials');
    assert.ok(!output.includes('Secret body text'), 'no message body');
    await queueEmpty(server);
  });

  it('shows the outbound session of a message to a destination, from the client side', async () => {
    const trace = new TraceProcess(['client', '--domain', 'far.test'], configFile);
    let id: string;
    try {
      await eventually(async () => (await watchers(adminPort)).some((w) => w.side === 'client'), 'the client trace to start watching');
      const sent = await swaks(server.port('submission'), 'outbound@sender.test', '127.0.0.2');
      id = /queued as (\S+)/.exec(sent)?.[1] ?? '';
      await queueEmpty(server);
      await eventually(() => trace.lines.some((line) => line.includes('* closed')), 'the delivery to show in the trace');
    } finally {
      trace.stop();
    }
    const output = trace.lines.join('\n');
    for (const pattern of [/\* connecting to 127\.0\.0\.1:\d+ at 127\.0\.0\.1 port \d+ for far\.test/, /S: 220 /, /C: EHLO /, /C: MAIL FROM:<outbound@sender\.test>/, /C: RCPT TO:<someone@far\.test>/, /C: DATA/]) {
      assert.match(output, pattern);
    }
    assert.ok(trace.lines.filter((line) => /C: (MAIL|RCPT|DATA)/.test(line)).every((line) => line.includes(id)), 'transaction lines carry the queue id');
    assert.ok(!output.includes('Secret body text'), 'no message body');
  });

  it('a watcher that stops reading loses events, counted, and never holds up mail', async () => {
    // A raw SSE request with a small queue whose socket we stop reading.
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      get({ host: '127.0.0.1', port: adminPort, path: '/api/trace/server?buffer=20', headers: { authorization: `Bearer ${TOKEN}` } }, resolve).on('error', reject);
    });
    assert.equal(response.statusCode, 200);
    response.pause();
    const before = sink.messages.length;
    const client = await SmtpTestClient.ready(server.port('submission'), { localAddress: '127.0.0.2' });
    await client.command(`AUTH PLAIN ${Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')}`, /^235 /);
    // Fifty recipients a message: about 150 trace events each, so the socket buffers between us and the paused reader fill soon.
    const recipients = Array.from({ length: 50 }, (_, i) => `r${i}@far.test`);
    let sent = 0;
    // Until the paused watcher has dropped something (its socket buffers fill first), at most 1000 messages.
    while (sent < 1000) {
      const reply = await client.sendMail('burst@sender.test', recipients, sampleMessage({ from: 'burst@sender.test', subject: `burst ${sent}` }));
      assert.match(reply.raw, /^250 /, 'every message is accepted while the watcher is stuck');
      sent++;
      if (sent % 5 === 0 && (await watchers(adminPort)).some((w) => w.side === 'server' && w.lost > 0)) break;
    }
    await client.quit();
    const stuck = (await watchers(adminPort)).find((w) => w.side === 'server');
    assert.ok(stuck && stuck.lost > 0, `the stuck watcher lost events (after ${sent} messages): ${JSON.stringify(stuck)}`);
    // Every message was delivered meanwhile.
    await sink.waitUntil((messages) => messages.length >= before + sent, 30_000, `${sent} messages at the sink`);
    // Reading again, the watcher is told how many it lost.
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (text += chunk));
    response.resume();
    await eventually(() => /"kind":"lost","at":\d+,"count":[1-9]/.test(text), 'the lost count in the stream');
    response.destroy();
    await eventually(async () => !(await watchers(adminPort)).some((w) => w.side === 'server'), 'the watcher to go when its client does');
  });
});
