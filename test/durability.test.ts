import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { configFromObject } from '../core/config/load.js';
import { createLogger } from '../core/log/logger.js';
import { Petrel } from '../core/petrel.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';

const temp = tempDir();
after(() => temp.remove());

function config(dataDir: string, queue: string) {
  return {
    server: { hostname: 'mx.petrel.test', dataDir, localDomains: ['localhost'], shutdownTimeout: '5s' },
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
    dns: { reverseLookup: false },
    logging: { level: 'info' },
    plugins: [{ name: 'relay-access' }, { name: queue }],
  };
}

/** Opens the queue the way a restarted server would and returns what is in it. */
async function queueContents(dataDir: string, queue: string) {
  const petrel = await Petrel.build({ config: configFromObject(config(dataDir, queue), temp.path), logger: createLogger({ level: 'silent' }) });
  const store = petrel.queue as unknown as { start(): Promise<void>; close(): Promise<void> } & typeof petrel.queue;
  await store.start();
  try {
    const messages = await store.list();
    const bodies = new Map<string, string>();
    for (const message of messages) {
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read(message.id)) chunks.push(chunk as Buffer);
      bodies.set(message.id, Buffer.concat(chunks).toString('utf8'));
    }
    return bodies;
  } finally {
    await store.close();
  }
}

for (const queue of ['queue-journal', 'queue-spool']) describe(`durability of acknowledged mail: ${queue}`, () => {
  it('every message acknowledged with 250 survives kill -9 right after the reply', async () => {
    const dataDir = `${temp.path}/kill9-${queue}`;
    const child = await ChildPetrel.start(temp.path, config(dataDir, queue));
    const accepted: { id: string; marker: string }[] = [];
    // Five clients in parallel, the kill lands right after the last 250.
    await Promise.all(
      [0, 1, 2, 3, 4].map(async (n) => {
        const client = await SmtpTestClient.ready(child.port());
        for (let i = 0; i < 4; i++) {
          const marker = `marker-${n}-${i}-${Math.random().toString(36).slice(2)}`;
          const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage({ body: marker }));
          assert.match(reply.raw, /^250 /);
          accepted.push({ id: reply.raw.split(' ').pop() as string, marker });
        }
      }),
    );
    child.kill('SIGKILL');
    const exit = await child.exited();
    assert.equal(exit.signal, 'SIGKILL');
    const bodies = await queueContents(dataDir, queue);
    for (const { id, marker } of accepted) {
      assert.ok(bodies.has(id), `message ${id} got 250 but is not in the queue after kill -9`);
      assert.match(bodies.get(id) as string, new RegExp(marker), `message ${id} lost its body`);
    }
    assert.equal(bodies.size, accepted.length);
  });

  it('SIGTERM while a message is in flight: it completes with 250 and is queued, or the client got no 250', async () => {
    const dataDir = `${temp.path}/sigterm-${queue}`;
    const child = await ChildPetrel.start(temp.path, config(dataDir, queue));
    const client = await SmtpTestClient.ready(child.port());
    const idle = await SmtpTestClient.ready(child.port());
    await client.command('MAIL FROM:<a@example.org>');
    await client.command('RCPT TO:<postmaster@localhost>');
    await client.command('DATA', /^354 /);
    client.write('Subject: in flight\r\n\r\nfirst half\r\n');
    child.kill('SIGTERM');
    await child.waitForLog((line) => line.signal === 'SIGTERM');
    client.write('second half\r\n.\r\n');
    const reply = await client.reply().catch(() => undefined);
    const exit = await child.exited();
    assert.equal(exit.code, 0, 'a graceful shutdown exits 0');
    const idleReply = await idle.reply().catch(() => undefined);
    assert.ok(idleReply === undefined || idleReply.code === 421, 'an idle session is told 421 or simply closed');
    const bodies = await queueContents(dataDir, queue);
    if (reply?.code === 250) {
      const id = reply.raw.split(' ').pop() as string;
      assert.match(bodies.get(id) ?? '', /first half\r\nsecond half/, 'acknowledged, so it must be queued whole');
    } else {
      assert.equal(bodies.size, 0, 'not acknowledged, so nothing half-received may be queued');
    }
    // With a 5 s shutdown deadline the in-flight message is expected to make it.
    assert.equal(reply?.code, 250, `expected the in-flight message to complete, got ${reply?.raw}`);
  });
});
