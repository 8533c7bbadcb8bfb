import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testCertificate } from './harness/certificates.js';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { fixturePlugin } from './fixtures/paths.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import { FakeDns } from './harness/fake-dns.js';
import { sparePort } from './harness/ports.js';
import { SinkServer } from './harness/sink-server.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * No credential ever leaves Petrel through a trace or the history: a
 * client's AUTH (every way smtp-server takes it: PLAIN and LOGIN, with an
 * initial response or as continuation lines, pipelined, a wrong password),
 * XCLIENT's LOGIN, and Petrel's own AUTH to a smarthost, all while a live
 * trace of both sides is subscribed over SSE and through `petrel trace`.
 * The secrets are looked for as they are and in every base64 form AUTH
 * sends them in; and the config shown over the admin API hides the
 * smarthost password.
 */

const TOKEN = 'trace-secrets-token-0123456789';
const USER = 'alice';
const PASSWORD = 'Inbound-Pa55word-7f3a';
const WRONG = 'Mistyped-Pa55word-c91e';
const SMART = { user: 'relay@petrel.test', password: 'Smarthost-Pa55word-b2d4' };
const certificate = testCertificate('smarthost.test');

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** Each secret as it is and as AUTH PLAIN / LOGIN carry it. */
const FORBIDDEN: readonly string[] = [
  PASSWORD,
  WRONG,
  SMART.password,
  ...[PASSWORD, WRONG].flatMap((pass) => [b64(pass), b64(`\0${USER}\0${pass}`), b64(`${USER}\0${USER}\0${pass}`)]),
  b64(SMART.password),
  b64(`\0${SMART.user}\0${SMART.password}`),
  // AUTH LOGIN's user line is as much a part of the exchange as the password: it is hidden too.
  b64(USER),
  b64(SMART.user),
];

function assertNoSecret(text: string, where: string): void {
  for (const secret of FORBIDDEN) assert.ok(!text.includes(secret), `${where} carries "${secret}":\n${text}`);
}

/** Everything `petrel trace <side>` prints, until it is stopped. */
class TraceProcess {
  output = '';
  readonly #child: ChildProcessWithoutNullStreams;

  constructor(side: 'server' | 'client', configFile: string) {
    this.#child = spawn(process.execPath, [PETREL_CLI, 'trace', side, '-c', configFile]);
    this.#child.stdout.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
  }

  stop(): void {
    this.#child.kill('SIGINT');
  }
}

/** A raw SSE subscription, its text as received. */
async function subscribe(port: number, side: 'server' | 'client'): Promise<{ text: () => string; close: () => void }> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: `/api/trace/${side}`, headers: { authorization: `Bearer ${TOKEN}` } }, resolve).on('error', reject);
  });
  assert.equal(response.statusCode, 200);
  let text = '';
  response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { text: () => text, close: () => response.destroy() };
}

async function adminJson(port: number, path: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(response.status, 200);
  return response.text();
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('traces and history carry no credentials', () => {
  const data = tempDir('petrel-trace-secrets-');
  const configFile = join(data.path, 'mta.config.json');
  let smarthost: SinkServer;
  let server: TestServer;
  let adminPort: number;

  before(async () => {
    smarthost = await SinkServer.start({ tls: certificate, auth: SMART });
    adminPort = await sparePort();
    const config = {
      server: { hostname: 'mx.petrel.test', dataDir: data.path, localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'submission', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true, submission: true, xclient: ['127.0.0.0/8'] }],
      dns: { reverseLookup: false },
      admin: { host: '127.0.0.1', port: adminPort, token: TOKEN },
      delivery: { retry: ['1h'], delayWarningAfter: 0 },
      plugins: [
        { path: fixturePlugin('auth-static'), options: { users: { [USER]: PASSWORD } } },
        { name: 'relay-access', options: { senderLogins: { '@sender.test': [USER] } } },
        { name: 'queue-spool' },
        // AUTH LOGIN: the user and the password go as lines of their own, the case nodemailer's own masking leaves the user in.
        { name: 'relay-smarthost', options: { host: 'smarthost.test', port: smarthost.port, ca: [certificate.certFile], auth: { user: SMART.user, password: SMART.password, method: 'LOGIN' } } },
      ],
    };
    writeFileSync(configFile, JSON.stringify(config));
    server = await startTestServer(config, { dns: new FakeDns({ 'smarthost.test': { A: ['127.0.0.1'] } }) });
  });

  after(async () => {
    await server?.stop();
    await smarthost?.close();
    data.remove();
  });

  it('hides every AUTH and XCLIENT secret, inbound and outbound, from SSE, petrel trace and the history files', async () => {
    const sse = { server: await subscribe(adminPort, 'server'), client: await subscribe(adminPort, 'client') };
    const cli = { server: new TraceProcess('server', configFile), client: new TraceProcess('client', configFile) };
    try {
      // Four watchers: the two raw subscriptions and the two `petrel trace` processes (each a Node.js start, slow on a loaded machine).
      await eventually(async () => JSON.parse(await adminJson(adminPort, '/api/trace/watchers')).length === 4, 'every watcher to subscribe', 60_000);
      const port = server.port('submission');
      const sendAfter = async (login: (client: SmtpTestClient) => Promise<void>, subject: string) => {
        const client = await SmtpTestClient.ready(port);
        await login(client);
        const reply = await client.sendMail('someone@sender.test', ['far@away.example'], sampleMessage({ from: 'someone@sender.test', subject }));
        assert.match(reply.raw, /^250 /);
        await client.quit();
      };
      await sendAfter(async (c) => void (await c.command(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`, /^235 /)), 'plain, initial response');
      await sendAfter(async (c) => {
        await c.command('AUTH PLAIN', /^334 /);
        await c.command(b64(`${USER}\0${USER}\0${PASSWORD}`), /^235 /);
      }, 'plain, continuation');
      await sendAfter(async (c) => {
        await c.command('auth login', /^334 /);
        await c.command(b64(USER), /^334 /);
        await c.command(b64(PASSWORD), /^235 /);
      }, 'login');
      await sendAfter(async (c) => {
        await c.command(`AUTH LOGIN ${b64(USER)}`, /^334 /);
        await c.command(b64(PASSWORD), /^235 /);
      }, 'login, initial response');
      await sendAfter(async (c) => {
        await c.command('AUTH PLAIN', /^334 /);
        await c.command(b64(`\0${USER}\0${WRONG}`), /^535 /);
        // Pipelined: the continuation is in the same packet as its AUTH.
        c.write(`AUTH PLAIN\r\n${b64(`\0${USER}\0${PASSWORD}`)}\r\n`);
        await c.expect(/^334 /);
        await c.expect(/^235 /);
      }, 'a wrong password, then pipelined');
      const front = await SmtpTestClient.ready(port);
      await front.command(`XCLIENT ADDR=192.0.2.7 LOGIN=${USER}`, /^220 /);
      await front.quit();

      await queueEmpty(server, 20_000);
      assert.equal(smarthost.messages.length, 5);
      assert.ok(smarthost.messages.every((m) => m.user === SMART.user), 'the smarthost saw our login');
      await eventually(() => cli.client.output.includes('AUTH LOGIN') && (cli.client.output.match(/\* closed/g) ?? []).length >= 1, 'the smarthost session in petrel trace client', 30_000);
      await eventually(() => (cli.server.output.match(/\* closed/g) ?? []).length >= 6, 'the six inbound sessions in petrel trace server', 30_000);
    } finally {
      cli.server.stop();
      cli.client.stop();
      sse.server.close();
      sse.client.close();
    }
    // What was traced is there, redacted.
    assert.match(sse.server.text(), /"text":"AUTH PLAIN \*\*\*"/);
    assert.match(sse.server.text(), /"text":"auth login"/);
    assert.match(sse.server.text(), /XCLIENT ADDR=192\.0\.2\.7 LOGIN=\*\*\*/);
    assert.match(sse.client.text(), /"text":"AUTH LOGIN"/);
    assert.match(cli.client.output, /C: AUTH LOGIN/);
    assertNoSecret(sse.server.text(), 'the server trace stream');
    assertNoSecret(sse.client.text(), 'the client trace stream');
    assertNoSecret(cli.server.output, 'petrel trace server');
    assertNoSecret(cli.client.output, 'petrel trace client');

    await server.petrel.history!.flush();
    const historyFiles = filesUnder(join(data.path, 'history'));
    assert.ok(historyFiles.length > 0, 'history was written');
    for (const file of historyFiles) assertNoSecret(readFileSync(file, 'utf8'), file);
  });

  it('shows the config and the plugin options without the smarthost password', async () => {
    const shown = (await adminJson(adminPort, '/api/config')) + (await adminJson(adminPort, '/api/plugins'));
    assert.match(shown, /relay-smarthost/);
    assert.ok(!shown.includes(SMART.password), shown);
  });
});
