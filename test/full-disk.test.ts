import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import { SinkServer } from './harness/sink-server.js';
import { SmallDisk } from './harness/small-disk.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * A server whose data directory is on a small tmpfs of the test's own
 * (SmallDisk: `unshare -m` + `mount -t tmpfs`), filled and freed while mail
 * comes in and goes out: the file system really answers ENOSPC.
 */

async function ready(server: TestServer): Promise<{ status: number; body: { ready: boolean; checks: Record<string, string> } }> {
  const address = server.petrel.adminAddress;
  assert.ok(address, 'admin listener is up');
  const response = await fetch(`http://127.0.0.1:${address.port}/ready`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; checks: Record<string, string> } };
}

describe('a full disk', () => {
  let disk: SmallDisk;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    disk = await SmallDisk.mount(8 * 1024 * 1024);
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await disk.unmount();
  });

  it('answers 452 4.3.1 (insufficient system storage) at the end of DATA, is not ready, and takes mail again once there is room', async () => {
    const server = await startTestServer({
      server: { hostname: 'mx.petrel.test', dataDir: `${disk.path}/receipt`, localDomains: ['localhost'], shutdownTimeout: '2s' },
      admin: { host: '127.0.0.1', port: 0 },
      delivery: { enabled: false },
    });
    cleanups.push(() => server.stop());
    await disk.fill();
    const client = await server.client();
    try {
      await client.command('MAIL FROM:<sender@origin.test>');
      await client.command('RCPT TO:<postmaster@localhost>');
      await client.command('DATA', /^354 /);
      client.write(sampleMessage({ body: 'x'.repeat(20_000) }));
      const reply = await client.command('.', /^4\d\d /);
      assert.match(reply.raw, /^452 4\.3\.1 /);
      const full = await ready(server);
      assert.equal(full.status, 503);
      // The message (20 KB) was kept in memory by the spool: it is the queue's journal write that failed.
      assert.match(full.body.checks.queue, /^failing: cannot write to .*journal.*ENOSPC/);
      // A message over 64 KiB goes to the spool's file as it arrives: that write fails too.
      await client.command('MAIL FROM:<sender@origin.test>');
      await client.command('RCPT TO:<postmaster@localhost>');
      await client.command('DATA', /^354 /);
      client.write(sampleMessage({ body: `${'y'.repeat(76)}\r\n`.repeat(1_500) }));
      assert.match((await client.command('.', /^4\d\d /)).raw, /^452 4\.3\.1 /);
      assert.match((await ready(server)).body.checks.spool, /^failing: cannot write to .*ENOSPC/);
      await disk.free();
      assert.equal((await ready(server)).status, 200, 'ready again as soon as the disk has room');
      const again = await client.sendMail('sender@origin.test', ['postmaster@localhost'], sampleMessage());
      assert.match(again.raw, /^250 /);
    } finally {
      await disk.free();
      await client.quit().catch(() => undefined);
    }
  });

  it('a deferral whose state write fails is retried once the disk has room, and /ready is false meanwhile', async () => {
    let attempts = 0;
    const sink = await SinkServer.start({
      data: async () => {
        attempts++;
        if (attempts > 1) return undefined;
        // The first attempt is deferred, and the queue must record that on a full disk.
        await disk.fill();
        return { code: 451, text: '4.7.1 try again later' };
      },
    });
    cleanups.push(() => sink.close());
    const server = await startTestServer({
      server: { hostname: 'mx.petrel.test', dataDir: `${disk.path}/deferral`, localDomains: ['localhost'], shutdownTimeout: '2s' },
      admin: { host: '127.0.0.1', port: 0 },
      delivery: { retry: ['200ms'], idlePoll: '1s' },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
      ],
    });
    cleanups.push(() => server.stop());
    assert.equal((await ready(server)).status, 200);
    const client = await server.client();
    const reply = await client.sendMail('sender@origin.test', ['someone@remote.test'], sampleMessage({ subject: 'deferred on a full disk' }));
    assert.match(reply.raw, /^250 /);
    await client.quit();

    try {
      await eventually(() => attempts === 1, 'the first delivery attempt');
      const notReady = await eventually(async () => {
        const answer = await ready(server);
        return answer.status === 503 ? answer : undefined;
      }, '/ready to turn false while the queue cannot write');
      assert.match(notReady.body.checks.queue, /ENOSPC/);
    } finally {
      await disk.free();
    }

    await sink.waitUntil((messages) => messages.length === 1, 20_000, 'the deferred message to be tried again and delivered');
    await queueEmpty(server);
    assert.equal(attempts, 2, 'one deferral, then one delivery');
    await eventually(async () => (await ready(server)).status === 200, '/ready to be true again');
  });
});
