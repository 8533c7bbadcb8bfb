import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { countById, sendLoad } from './harness/load.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { SinkServer } from './harness/sink-server.js';
import { tempDir } from './harness/temp-dir.js';

const KILLS = 3;

/**
 * At-least-once under fire: a Petrel process (queue-spool) takes a steady
 * load of mail and delivers it to a slowish sink while the test kills it
 * with SIGKILL three times and starts it again. Every message that got a 250
 * must reach the sink; a message may arrive twice only if a kill fell
 * between its first arrival and its second (its delivery was in flight).
 */
describe('durability under SIGKILL', () => {
  const dir = tempDir('petrel-crash-');
  let petrel: ChildPetrel | undefined;
  let sink: SinkServer | undefined;

  after(async () => {
    petrel?.kill('SIGKILL');
    await petrel?.exited();
    await sink?.close();
    dir.remove();
  });

  it('loses no acknowledged message across three kills', async () => {
    // A slow DATA reply keeps deliveries in flight, so kills land in the middle of some.
    sink = await SinkServer.start({ data: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 20)) });
    const config = {
      server: { hostname: 'crash.petrel.test', dataDir: `${dir.path}/data`, localDomains: ['localhost'], shutdownTimeout: '5s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      logging: { level: 'info' },
      delivery: { retry: ['100ms'] },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
      ],
    };
    petrel = await ChildPetrel.start(dir.path, config);

    // The port changes with each restart (port 0); the load follows it.
    const load = sendLoad(() => petrel!.port(), { count: 600, concurrency: 4, to: 'user@remote.test' });
    const kills: { at: number }[] = [];
    for (let i = 0; i < KILLS; i++) {
      await new Promise((resolve) => setTimeout(resolve, 700));
      kills.push({ at: Date.now() });
      petrel.kill('SIGKILL');
      await petrel.exited();
      petrel = await ChildPetrel.start(dir.path, config);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    load.stop();
    const { acknowledged, unacknowledged } = await load.done;

    const acked = new Set(acknowledged);
    await sink.waitUntil((messages) => {
      const seen = countById(messages);
      return [...acked].every((id) => seen.has(id));
    }, 30_000, `all ${acked.size} acknowledged messages at the sink`).catch((error: Error) => {
      const seen = countById(sink!.messages);
      const missing = [...acked].filter((id) => !seen.has(id));
      throw new Error(`${error.message}; missing ${missing.length}: ${missing.slice(0, 10).join(' ')}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 300));

    const counts = countById(sink.messages);
    const arrivals = new Map<string, number[]>();
    for (const message of sink.messages) {
      const id = /^Message-ID: (<[^>]+>)/im.exec(message.data.toString())![1];
      arrivals.set(id, [...(arrivals.get(id) ?? []), message.receivedAt]);
    }
    const duplicates = [...counts.entries()].filter(([, n]) => n > 1).map(([id]) => id);
    const unexplained = duplicates.filter((id) => {
      const [first, second] = arrivals.get(id)!;
      return !kills.some((kill) => first <= kill.at && kill.at < second);
    });
    const unacknowledgedButDelivered = [...counts.keys()].filter((id) => !acked.has(id)).length;
    console.log(
      `SIGKILL x${KILLS}: ${acked.size} acknowledged (${unacknowledged} attempts got no 250), all ${acked.size} at the sink; ` +
        `${duplicates.length} delivered twice (in flight at a kill); ${unacknowledgedButDelivered} delivered without a 250 (killed between queueing and the reply)`,
    );
    assert.ok(acked.size > 100, `a real load was accepted (${acked.size})`);
    assert.deepEqual(unexplained, [], 'every duplicate is explained by a kill between its two arrivals');
    petrel.kill('SIGTERM');
    assert.equal((await petrel.exited()).code, 0, 'the last run shuts down cleanly on SIGTERM');
  });
});
