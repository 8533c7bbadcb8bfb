import 'reflect-metadata';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Routing from '../plugins/routing/index.js';
import type { PetrelConfig } from '../core/config/schema.js';
import type { QueuedRecipient } from '../core/queue/contract.js';
import { queueEmpty } from './harness/eventually.js';
import { waitForMail } from './harness/maildir.js';
import { MxWorld } from './harness/mx-world.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer } from './harness/test-server.js';

/**
 * One message, five recipients, four targets: the routing plugin sends the
 * local one to the maildir, one domain to LMTP, a wildcard domain to the
 * smarthost (both of its recipients in one transaction), the rest by MX.
 */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe('routing', () => {
  it('sends each recipient to the target its domain is routed to', async () => {
    const world = new MxWorld();
    cleanups.push(() => world.close());
    const mx = await world.host('mx.remote.test');
    world.domain('remote.test', [['mx.remote.test', 10]]);
    const lmtp = await SinkServer.start({ lmtp: true });
    const smarthost = await SinkServer.start();
    cleanups.push(() => lmtp.close(), () => smarthost.close());
    const server = await startTestServer(
      {
        server: { localDomains: ['petrel.test'] },
        delivery: { retry: ['1h'], delayWarningAfter: 0 },
        plugins: [
          { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
          { name: 'queue-spool' },
          {
            name: 'routing',
            options: {
              local: 'deliver-maildir',
              routes: [
                { domains: ['mailbox.test'], target: 'deliver-lmtp' },
                { domains: ['*.partner.test'], target: 'relay-smarthost', destination: 'smarthost' },
              ],
              default: 'relay-mx',
            },
          },
          { name: 'deliver-maildir' },
          { name: 'deliver-lmtp', options: { host: '127.0.0.1', port: lmtp.port } },
          { name: 'relay-smarthost', options: { host: '127.0.0.1', port: smarthost.port, tls: 'none' } },
          { name: 'relay-mx', options: world.relayMxOptions() },
        ],
      },
      { dns: world.dns },
    );
    cleanups.push(() => server.stop());
    const to = ['alice@petrel.test', 'bob@mailbox.test', 'carol@a.partner.test', 'dave@b.partner.test', 'erin@remote.test'];
    const client = await server.client();
    await client.sendMail('sender@petrel.test', to, sampleMessage({ to: to.join(', ') }));
    await client.quit();
    await queueEmpty(server);
    assert.equal((await waitForMail(join(server.dataDir, 'maildir', 'alice'))).length, 1);
    assert.deepEqual(lmtp.messages.map((m) => m.to), [['bob@mailbox.test']]);
    assert.deepEqual(smarthost.messages.map((m) => m.to), [['carol@a.partner.test', 'dave@b.partner.test']], 'one transaction for the route');
    assert.deepEqual(mx.messages.map((m) => m.to), [['erin@remote.test']]);
  });

  it('matches domains exactly, *.domain for subdomains only, * for all; IDNs in either spelling', () => {
    const config = { server: { localDomains: ['Petrel.TEST', 'bücher.example'] } } as PetrelConfig;
    const routing = new Routing(
      Routing.options.parse({ local: 'deliver-maildir', routes: [{ domains: ['*.sub.test'], target: 'lmtp' }, { domains: ['*'], target: 'smarthost' }] }),
      config,
    );
    const route = (address: string) => routing.route({ address } as QueuedRecipient);
    assert.deepEqual(route('a@petrel.test'), { target: 'deliver-maildir', destination: 'petrel.test' });
    assert.deepEqual(route('a@xn--bcher-kva.example'), { target: 'deliver-maildir', destination: 'xn--bcher-kva.example' });
    assert.deepEqual(route('a@x.sub.test'), { target: 'lmtp', destination: 'x.sub.test' });
    assert.deepEqual(route('a@sub.test'), { target: 'smarthost', destination: 'sub.test' });
    assert.deepEqual(route('postmaster'), { target: 'deliver-maildir', destination: 'petrel.test' }, 'RFC 5321 4.5.1: our own postmaster');
    const partial = new Routing(Routing.options.parse({ routes: [{ domains: ['only.test'], target: 'lmtp' }] }), config);
    assert.equal(partial.route({ address: 'a@elsewhere.test' } as QueuedRecipient), undefined, 'no opinion: the scheduler picks the first target');
  });
});
