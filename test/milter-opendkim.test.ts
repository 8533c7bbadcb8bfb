import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { authenticate } from 'mailauth';
import { headerFields, queuedMessageFrom } from './fixtures/queued.js';
import { FakeDns } from './harness/fake-dns.js';
import { startOpenDkim } from './harness/milter-daemons.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer } from './harness/test-server.js';

/**
 * The milter plugin in front of a real OpenDKIM in signing mode: the message
 * Petrel queues carries the DKIM-Signature OpenDKIM made (inserted through
 * the milter protocol), and mailauth verifies it against the record
 * opendkim-genkey wrote.
 */

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('milter with OpenDKIM', () => {
  it('a message through Petrel gets a DKIM-Signature from opendkim that verifies', async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const opendkim = await startOpenDkim(dir.path, 'petrel.test', 'mail2026');
    cleanups.push(() => opendkim.stop());
    const dns = new FakeDns();
    dns.set(opendkim.record.name, { TXT: [[opendkim.record.txt]] });
    const server = await startTestServer(
      {
        server: { localDomains: ['petrel.test', 'receiver.test'] },
        plugins: [
          { name: 'milter', options: { milters: [{ name: 'opendkim', socket: opendkim.socket, timeout: '20s' }] } },
          { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
          { name: 'queue-spool' },
        ],
      },
      { dns },
    );
    cleanups.push(() => server.stop());
    const client = await server.client();
    const message = sampleMessage({ from: 'Alice <alice@petrel.test>', to: 'bob@receiver.test', subject: 'a subject long enough that it is folded over two lines when\r\n it is written' });
    const reply = await client.sendMail('alice@petrel.test', ['bob@receiver.test'], message);
    assert.match(reply.raw, /^250 /, opendkim.output());
    // A second message on the same connection: opendkim's session goes on after the first.
    const second = await client.sendMail('alice2@petrel.test', ['bob@receiver.test'], sampleMessage({ from: 'alice2@petrel.test', to: 'bob@receiver.test' }));
    assert.match(second.raw, /^250 /, opendkim.output());
    await client.quit();
    assert.ok(headerFields(await queuedMessageFrom(server, 'alice2@petrel.test')).some((field) => field.startsWith('DKIM-Signature:')), 'the second message is signed too');

    const queued = await queuedMessageFrom(server, 'alice@petrel.test');
    const signature = headerFields(queued).find((field) => field.startsWith('DKIM-Signature:'));
    assert.ok(signature, `queued with a DKIM-Signature:\n${queued}\nopendkim said:\n${opendkim.output()}`);
    assert.match(signature, /d=petrel\.test;/);
    assert.match(signature, /s=mail2026;/);
    const { dkim } = await authenticate(queued, {
      ip: '192.0.2.1',
      helo: 'mx.petrel.test',
      sender: 'alice@petrel.test',
      mta: 'mx.receiver.test',
      resolver: (name: string, type: string) => dns.resolve(name, type as 'TXT') as Promise<string[][]>,
      disableBimi: true,
    });
    assert.deepEqual(
      dkim.results.map((result) => [result.signingDomain, result.selector, result.status.result]),
      [['petrel.test', 'mail2026', 'pass']],
      JSON.stringify(dkim.results, null, 1),
    );
  });
});
