import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HistoryStore } from '../core/history/history-store.js';
import type { ReceivedRecord } from '../core/history/history-record.js';
import { newQueueId } from '../core/queue/queue-id.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { LogCapture } from './harness/log-capture.js';
import { tempDir } from './harness/temp-dir.js';

const DAY = 86_400_000;

function received(id: string, at: number, from: string, to: string): ReceivedRecord {
  return { id, t: 'received', at, from, to: [to], size: 10, checks: [], reply: `250 2.0.0 Ok: queued as ${id}` };
}

describe('history store', () => {
  it('keeps records in daily files, without waiting, and finds them by id, sender, recipient or Message-ID', async () => {
    const dir = tempDir();
    const clock = new ManualClock(Date.parse('2026-12-01T10:00:00Z'));
    const store = new HistoryStore(dir.path, { retention: 7 * DAY, maxSize: 1 << 20, refusalsMaxSize: 1 << 20, expireAfter: 5 * DAY }, clock, new LogCapture().logger);
    try {
      const one = newQueueId(clock.now());
      store.append({ ...received(one, clock.now(), 'Alice@Example.org', 'bob@example.net'), msgid: '<m1@example.org>' });
      store.append({ id: one, t: 'settled', at: clock.now() + 5, attempt: 1, results: [{ address: 'bob@example.net', status: 'delivered' }], done: true });
      // Records go to the file of the day they are written.
      await store.flush();
      clock.advance(DAY);
      const refusal = newQueueId(clock.now());
      store.append({ id: refusal, t: 'refused', at: clock.now(), stage: 'rcpt', from: 'spam@bad.example', to: [], reply: '554 5.7.1 no', session: { sid: 's', client: '192.0.2.1', listener: 'mx' }, checks: [] });
      await store.flush();
      assert.deepEqual(readdirSync(join(dir.path, 'history', 'messages')), ['2026-12-01.jsonl']);
      assert.deepEqual(readdirSync(join(dir.path, 'history', 'refusals')), ['2026-12-02.jsonl']);
      for (const query of [one, 'alice@example.org', 'BOB@example.net', '<m1@example.org>', 'm1@example.org']) {
        const found = await store.find(query);
        assert.equal(found.length, 1, query);
        assert.deepEqual(found[0].records.map((r) => r.t), ['received', 'settled'], query);
      }
      assert.equal((await store.find('spam@bad.example'))[0].records[0].t, 'refused');
      assert.deepEqual(await store.find('nobody@example.org'), []);
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it('removes days past retention plus expireAfter (refusals past retention), and the oldest days beyond the size cap', async () => {
    const dir = tempDir();
    const clock = new ManualClock(Date.parse('2026-12-20T10:00:00Z'));
    const messages = join(dir.path, 'history', 'messages');
    const refusals = join(dir.path, 'history', 'refusals');
    mkdirSync(messages, { recursive: true });
    mkdirSync(refusals, { recursive: true });
    for (const day of ['2026-12-05', '2026-12-07', '2026-12-09', '2026-12-18', '2026-12-19']) writeFileSync(join(messages, `${day}.jsonl`), 'x'.repeat(100) + '\n');
    for (const day of ['2026-12-12', '2026-12-13']) writeFileSync(join(refusals, `${day}.jsonl`), 'y\n');
    const store = new HistoryStore(dir.path, { retention: 7 * DAY, maxSize: 250, refusalsMaxSize: 1 << 20, expireAfter: 5 * DAY }, clock, new LogCapture().logger);
    try {
      await store.prune();
      // Messages are kept 12 days after their day ended: the 5th and the 7th go; then the cap (250 bytes) keeps the two newest.
      assert.deepEqual(readdirSync(messages).sort(), ['2026-12-18.jsonl', '2026-12-19.jsonl']);
      assert.deepEqual(readdirSync(refusals).sort(), ['2026-12-13.jsonl']);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});
