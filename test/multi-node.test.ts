import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { fixturePlugin } from './fixtures/paths.js';
import { countById, sendLoad } from './harness/load.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { REDIS_URL } from './fixtures/redis.js';
import { deleteKeys, testPrefix } from './harness/redis-cluster.js';
import { SinkServer } from './harness/sink-server.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * Two real Petrel processes share one Redis queue. 1,000 messages are
 * queued first (through a node that only accepts), then both nodes drain the
 * queue at once; the sink counts every Message-ID: each exactly once.
 */
describe('two nodes on one Redis queue', () => {
  const dir = tempDir('petrel-nodes-');
  const keyPrefix = testPrefix();
  const processes: ChildPetrel[] = [];
  let sink: SinkServer | undefined;

  after(async () => {
    for (const node of processes) {
      node.kill('SIGKILL');
      await node.exited();
    }
    await sink?.close();
    const admin = new Redis(REDIS_URL);
    await deleteKeys([admin], keyPrefix);
    admin.disconnect();
    dir.remove();
  });

  async function node(name: string, deliver: boolean, sinkPort: number): Promise<ChildPetrel> {
    const config = {
      server: { hostname: `${name}.petrel.test`, dataDir: `${dir.path}/${name}-data`, localDomains: ['localhost'], shutdownTimeout: '5s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      logging: { level: 'info' },
      redis: { url: REDIS_URL, keyPrefix },
      delivery: { enabled: deliver, retry: ['100ms'], concurrency: { total: 20, perDestination: 20 } },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-redis', options: { checkPersistence: false } },
        { path: fixturePlugin('sink-delivery'), options: { port: sinkPort, name } },
      ],
    };
    const petrel = await ChildPetrel.start(dir.path, config);
    processes.push(petrel);
    return petrel;
  }

  it('delivers 1,000 queued messages: none twice, none lost', async () => {
    const seen = new Set<string>();
    // Until both nodes have come to the sink once, it asks them to retry: so both are
    // draining the queue when deliveries start to succeed.
    sink = await SinkServer.start({
      rcpt: () => undefined,
      data: (message) => {
        seen.add(message.helo);
        return seen.size < 2 ? { code: 451, text: '4.3.0 Waiting for the other node' } : undefined;
      },
    });
    const intake = await node('intake', false, sink.port);
    const load = sendLoad(() => intake.port(), { count: 1000, concurrency: 8, to: 'user@remote.test' });
    const { acknowledged, unacknowledged } = await load.done;
    assert.equal(acknowledged.length, 1000, `all 1,000 accepted (${unacknowledged} not)`);
    intake.kill('SIGTERM');
    assert.equal((await intake.exited()).code, 0, 'the intake node shuts down cleanly');

    await Promise.all([node('alpha', true, sink.port), node('beta', true, sink.port)]);
    await sink.waitUntil((messages) => new Set(countById(messages).keys()).size >= 1000, 60_000, 'all 1,000 messages at the sink');
    // Give a duplicate, if there were one, a moment to show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const counts = countById(sink.messages);
    const duplicates = [...counts.entries()].filter(([, n]) => n > 1);
    const byNode = Object.fromEntries(['alpha', 'beta'].map((name) => [name, sink!.messages.filter((m) => m.helo === name).length]));
    console.log(`two nodes: ${counts.size} distinct messages at the sink, ${duplicates.length} delivered twice; alpha delivered ${byNode.alpha}, beta ${byNode.beta}`);
    assert.equal(duplicates.length, 0, `delivered twice: ${duplicates.map(([id]) => id).join(', ')}`);
    assert.deepEqual([...counts.keys()].sort(), [...acknowledged].sort(), 'exactly the acknowledged messages arrived');
    assert.ok(byNode.alpha > 0 && byNode.beta > 0, 'both nodes delivered');
    const admin = new Redis(REDIS_URL, { keyPrefix });
    assert.equal(await admin.zcard('queue:all'), 0, 'the shared queue is empty');
    admin.disconnect();
  });
});
