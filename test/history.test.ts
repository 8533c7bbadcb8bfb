import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { fixturePlugin } from './fixtures/paths.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const run = promisify(execFile);

/**
 * Each message's history as an operator reads it: `petrel queue show` and
 * `petrel why`, the real CLI in a child process, against a running server
 * (its control socket) and against the history files once it has stopped.
 */
describe('message history', () => {
  const data = tempDir('petrel-history-');
  const configFile = join(data.path, 'mta.config.yaml');
  let sink: SinkServer;
  let server: TestServer | undefined;

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [PETREL_CLI, ...args, '-c', configFile]);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  /** Lines of `output` matching each pattern, in this order. */
  function inOrder(output: string, patterns: readonly RegExp[]): void {
    const lines = output.split('\n');
    let from = 0;
    for (const pattern of patterns) {
      const index = lines.findIndex((line, i) => i >= from && pattern.test(line));
      assert.ok(index >= 0, `no line matching ${pattern} after line ${from} in:\n${output}`);
      from = index + 1;
    }
  }

  before(async () => {
    // The first try of every recipient gets 451, the next 250.
    sink = await SinkServer.start({
      rcpt: (address, count) =>
        address === 'nobody@far.test' ? { code: 550, text: '5.1.1 No such user' } : count === 1 ? { code: 451, text: '4.7.1 Greylisted, try again' } : undefined,
    });
    const config = {
      server: { hostname: 'mx.petrel.test', dataDir: data.path, localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      delivery: { retry: ['200ms'] },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.2/32'] } },
        // Verifies loopback clients too (no records in the test DNS: none everywhere), so its findings are in the history.
        { name: 'mailauth', options: { skipNetworks: [] } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
      ],
    };
    writeFileSync(configFile, JSON.stringify(config));
    server = await startTestServer(config);
  });

  after(async () => {
    await server?.stop();
    await sink.close();
    data.remove();
  });

  it('shows both attempts of a message a server first deferred (451), then took (250)', async () => {
    const client = await server!.client('mx', { localAddress: '127.0.0.2' });
    const reply = await client.sendMail('history@origin.test', ['someone@far.test'], sampleMessage({ subject: 'twice', messageId: '<twice@origin.test>' }));
    await client.quit();
    const id = /queued as (\S+)/.exec(reply.raw)![1];
    await queueEmpty(server!);
    const shown = await cli('queue', 'show', id);
    assert.equal(shown.code, 0, shown.stderr);
    inOrder(shown.stdout, [
      new RegExp(`^${id}: no longer in the queue`),
      /received +\d+ bytes from <history@origin\.test> to <someone@far\.test>/,
      /client 127\.0\.0\.2, helo client\.example\.test, listener mx, no TLS/,
      /mailauth: spf=none/,
      /rcpt +relay-access +accept/,
      /mailauth: dmarc=none/,
      new RegExp(`250 2\\.0\\.0 Ok: queued as ${id}`),
      /attempt 1 +sink-delivery → far\.test \(\d+ ms\)/,
      /connected to 127\.0\.0\.1:\d+, TLS none \(STARTTLS not offered\)/,
      /<someone@far\.test> deferred: 451 4\.7\.1 Greylisted, try again/,
      /settled +1 deferred; next attempt /,
      /attempt 2 +sink-delivery → far\.test/,
      /<someone@far\.test> delivered: 250/,
      /settled +1 delivered; done, the message left the queue/,
    ]);
    // The same from `petrel why`, by Message-ID.
    const why = await cli('why', '<twice@origin.test>');
    assert.equal(why.code, 0, why.stderr);
    inOrder(why.stdout, [new RegExp(`^${id} +accepted +<history@origin\\.test> +Message-ID <twice@origin\\.test>`), /attempt 1/, /attempt 2/, /done/]);
  });

  it('links a bounced message to the delivery status notification it sent', async () => {
    const client = await server!.client('mx', { localAddress: '127.0.0.2' });
    const reply = await client.sendMail('bounced@origin.test', ['nobody@far.test'], sampleMessage({ subject: 'to nobody' }));
    await client.quit();
    const id = /queued as (\S+)/.exec(reply.raw)![1];
    const shown = await eventually(async () => {
      const result = await cli('queue', 'show', id);
      return /queued as/.test(result.stdout.split('settled')[1] ?? '') ? result : undefined;
    }, 'the bounce to be recorded');
    inOrder(shown.stdout, [/attempt 1/, /<nobody@far\.test> bounced: 550 5\.1\.1 No such user/, /settled +1 bounced; done/, /delivery status notification to the sender queued as [0-9a-z]{9}-[0-9a-f]{16}/]);
  });

  it('petrel why finds a refused message by its sender, with the reply and the plugin that refused it', async () => {
    // 127.0.0.3 is not a relay network: relay-access refuses the recipient.
    const client = await server!.client('mx', { localAddress: '127.0.0.3' });
    await client.command('MAIL FROM:<refused@spammer.test>');
    await client.command('RCPT TO:<victim@far.test>', /^554 /);
    await client.quit();
    const expected = [/ +refused +<refused@spammer\.test>/, /REFUSED +at RCPT: 554 5\.7\.1 .*Relay access denied \(relay-access\)/, /from <refused@spammer\.test>/, /client 127\.0\.0\.3/, /rcpt +relay-access +reject/];
    const running = await cli('why', 'refused@spammer.test');
    assert.equal(running.code, 0, running.stderr);
    inOrder(running.stdout, expected);
    // Without a server, from the files it wrote.
    await server!.stop();
    server = undefined;
    const stopped = await cli('why', 'REFUSED@spammer.test');
    assert.equal(stopped.code, 0, stopped.stderr);
    inOrder(stopped.stdout, expected);
    const unknown = await cli('why', 'nobody@nowhere.test');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nothing in the history matches "nobody@nowhere\.test"/);
  });
});
