import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseConfigText } from '../core/config/load.js';
import { testCertificate } from './harness/certificates.js';
import { afterFirstAttempt, queueEmpty } from './harness/eventually.js';
import { FakeDns } from './harness/fake-dns.js';
import { SinkServer, type SinkOptions } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * relay-smarthost: every message to one relay host, here a sink server that
 * requires AUTH over TLS, found as `smarthost.test` through the fake DNS.
 */

const LOGIN = { user: 'relay@petrel.test', password: 'correct horse battery' };
const certificate = testCertificate('smarthost.test');

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function smarthost(options: SinkOptions = {}): Promise<SinkServer> {
  const sink = await SinkServer.start({ tls: certificate, auth: LOGIN, ...options });
  cleanups.push(() => sink.close());
  return sink;
}

/**
 * A server whose only delivery target is relay-smarthost. The config goes
 * through YAML with the password as `${SMARTHOST_PASSWORD}`, the way an
 * operator keeps it out of the file.
 */
async function petrel(sink: SinkServer, smarthostOptions: Record<string, unknown>, env: Record<string, string> = { SMARTHOST_PASSWORD: LOGIN.password }): Promise<TestServer> {
  const plugins = [
    { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
    { name: 'queue-spool' },
    {
      name: 'relay-smarthost',
      options: { host: 'smarthost.test', port: sink.port, ca: [certificate.certFile], auth: { user: LOGIN.user, password: '${SMARTHOST_PASSWORD}' }, ...smarthostOptions },
    },
  ];
  const { config } = parseConfigText(stringify({ listeners: [{ name: 'mx', port: 0, tls: 'none' }], plugins }), 'smarthost-test.yaml', env);
  const server = await startTestServer(
    { delivery: { retry: ['1h'], delayWarningAfter: 0 }, plugins: config.plugins },
    { dns: new FakeDns({ 'smarthost.test': { A: ['127.0.0.1'] } }) },
  );
  cleanups.push(() => server.stop());
  return server;
}

async function send(server: TestServer, to: string[]): Promise<string> {
  const client = await server.client();
  const reply = await client.sendMail('sender@petrel.test', to, sampleMessage({ to: to.join(', ') }));
  await client.quit();
  return /queued as (\S+)/.exec(reply.raw)![1];
}

describe('relay-smarthost', () => {
  it('logs in over STARTTLS (certificate checked) and relays mail for any domain, reusing the connection', async () => {
    const sink = await smarthost();
    const server = await petrel(sink, {});
    await send(server, ['a@one.example']);
    await sink.waitUntil((messages) => messages.length === 1);
    await send(server, ['b@two.example']);
    await sink.waitUntil((messages) => messages.length === 2);
    await queueEmpty(server);
    for (const message of sink.messages) {
      assert.equal(message.user, LOGIN.user, 'authenticated with the password from the environment');
      assert.equal(message.secure, true);
    }
    assert.equal(sink.connections, 1, 'one connection carried both messages');
  });

  it('speaks TLS from the first byte with tls: implicit (AUTH LOGIN)', async () => {
    const sink = await smarthost({ implicitTls: true });
    const server = await petrel(sink, { tls: 'implicit', auth: { user: LOGIN.user, password: '${SMARTHOST_PASSWORD}', method: 'LOGIN' } });
    await send(server, ['d@four.example']);
    await sink.waitUntil((messages) => messages.length === 1);
    assert.equal(sink.messages[0].secure, true);
    assert.equal(sink.messages[0].user, LOGIN.user);
  });

  it('defers (never bounces) when the smarthost refuses our login, keeping its reply', async () => {
    const sink = await smarthost();
    const server = await petrel(sink, {}, { SMARTHOST_PASSWORD: 'wrong password' });
    const id = await send(server, ['e@five.example']);
    const message = await afterFirstAttempt(server, id);
    assert.equal(message.recipients[0].status, 'deferred');
    assert.match(message.recipients[0].lastReply ?? '', /^451 4\.7\.8 authentication to smarthost\.test failed: 535 .*Authentication credentials invalid/);
    assert.equal(sink.messages.length, 0);
  });

  it('refuses a config that would send credentials in plaintext', async () => {
    const sink = await smarthost();
    await assert.rejects(petrel(sink, { tls: 'none' }), /auth needs TLS/);
  });
});
