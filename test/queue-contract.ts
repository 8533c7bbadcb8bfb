import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Plugin } from '../core/plugins/contract.js';
import type { NewMessage, Queue } from '../core/queue/contract.js';
import { newQueueId } from '../core/queue/queue-id.js';
import { countMessages } from '../core/queue/queue-counts.js';
import { listCursor } from '../core/queue/queue-filter.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * One contract, every queue: the same tests run against queue-journal,
 * queue-spool and queue-redis (single Redis and a Cluster). A queue under test comes from a
 * factory that can also make a peer (another node on the same storage; for
 * the local queues, the same instance, since one process owns the directory) and
 * a restarted instance (what a node sees after a crash).
 */

export type ContractQueue = Queue & Plugin;

export interface QueueUnderTest {
  readonly queue: ContractQueue;
  /** Another node on the same storage (or the same queue where only one may own it). */
  peer(): Promise<ContractQueue>;
  /** A new instance on the same storage, as after a crash of the old one (which is not closed). */
  restart(): Promise<ContractQueue>;
  /** Closes everything and deletes what the test stored. */
  cleanup(): Promise<void>;
}

export type QueueFactory = (clock: ManualClock) => Promise<QueueUnderTest>;

const HEADER = 'Subject: contract\r\nMessage-ID: <contract@petrel.test>\r\n\r\n';

export function queueContract(name: string, factory: QueueFactory): void {
  describe(`queue contract: ${name}`, () => {
    const files = tempDir('petrel-contract-');
    let clock: ManualClock;
    let subject: QueueUnderTest;
    let queue: ContractQueue;

    before(() => undefined);
    after(() => files.remove());
    beforeEach(async () => {
      clock = new ManualClock();
      subject = await factory(clock);
      queue = subject.queue;
    });

    /** A message received at `at` (default now) for `recipients`. */
    async function newMessage(recipients: string[] = ['a@example.org'], options: { at?: number; from?: string; body?: string } = {}): Promise<NewMessage> {
      const at = options.at ?? clock.now();
      const id = newQueueId(at);
      const original = 'Subject: original\r\n\r\n';
      const body = options.body ?? `body of ${id}\r\n`;
      const path = join(files.path, id);
      await writeFile(path, original + body);
      return {
        id,
        envelope: { from: options.from ?? 'sender@example.org', smtpUtf8: false, bodyType: '7bit', requireTls: false },
        recipients: recipients.map((address) => ({ address })),
        origin: { remoteAddress: '192.0.2.1', helo: 'client.example', listener: 'mx' },
        receivedAt: at,
        headerBlock: Buffer.from(HEADER),
        file: { path, size: Buffer.byteLength(original + body), bodyOffset: Buffer.byteLength(original) },
        messageId: '<contract@petrel.test>',
      };
    }

    async function enqueue(...args: Parameters<typeof newMessage>): Promise<string> {
      const message = await newMessage(...args);
      await queue.enqueue(message);
      return message.id;
    }

    it('gives back the same bytes whether the spool kept an in-memory copy or not, before and after a restart', async () => {
      try {
        const withCopy = await newMessage(['a@example.org'], { body: 'kept in memory\r\n' });
        const bytes = await readFile(withCopy.file.path);
        await queue.enqueue({ ...withCopy, file: { ...withCopy.file, content: bytes } });
        const withoutCopy = await enqueue(['a@example.org'], { body: 'read from the file\r\n' });
        assert.equal(await text(await queue.read(withCopy.id)), `${HEADER}kept in memory\r\n`);
        assert.equal(await text(await queue.read(withoutCopy)), `${HEADER}read from the file\r\n`);
        const restarted = await subject.restart();
        assert.equal(await text(await restarted.read(withCopy.id)), `${HEADER}kept in memory\r\n`);
      } finally {
        await subject.cleanup();
      }
    });

    it('stores a message and gives it back with the outgoing header block and the body', async () => {
      try {
        const id = await enqueue(['a@example.org', 'b@example.net'], { body: 'line one\r\nline two\r\n' });
        const message = await queue.inspect(id);
        assert.ok(message);
        assert.equal(message.envelope.from, 'sender@example.org');
        assert.deepEqual(message.recipients.map((r) => [r.address, r.status, r.attempts]), [
          ['a@example.org', 'pending', 0],
          ['b@example.net', 'pending', 0],
        ]);
        assert.equal(message.attempts, 0);
        assert.equal(message.held, false);
        assert.equal(message.messageId, '<contract@petrel.test>');
        assert.equal(await text(await queue.read(id)), `${HEADER}line one\r\nline two\r\n`);
        assert.deepEqual((await queue.list()).map((m) => m.id), [id]);
      } finally {
        await subject.cleanup();
      }
    });

    it('leases due messages oldest due first, and not before they are due', async () => {
      try {
        const now = clock.now();
        const second = await enqueue(['a@example.org'], { at: now - 1_000 });
        const first = await enqueue(['a@example.org'], { at: now - 2_000 });
        const third = await enqueue(['a@example.org'], { at: now });
        const leases = await queue.lease(10, 60_000);
        assert.deepEqual(leases.map((l) => l.message.id), [first, second, third]);
        // Defer one into the future: it is not leased until then.
        const [lease] = leases;
        assert.equal(await queue.settle(lease, { outcomes: [{ address: 'a@example.org', status: 'deferred', reply: '451 4.4.1 later' }], nextAttemptAt: now + 5_000 }), true);
        assert.deepEqual(await queue.lease(10, 60_000), [], 'nothing due: the rest are leased, the first deferred');
        assert.equal(await queue.nextDueAt(), now + 5_000);
        clock.advance(5_000);
        const again = await queue.lease(10, 60_000);
        assert.deepEqual(again.map((l) => l.message.id), [first]);
        assert.equal(again[0].message.attempts, 1);
      } finally {
        await subject.cleanup();
      }
    });

    it('settles per recipient: finished recipients stay finished, the message leaves when all are done', async () => {
      try {
        const id = await enqueue(['ok@example.org', 'later@example.org', 'bad@example.org']);
        const [lease] = await queue.lease(1, 60_000);
        const next = clock.now() + 1_000;
        await queue.settle(lease, {
          outcomes: [
            { address: 'ok@example.org', status: 'delivered', reply: '250 2.0.0 ok' },
            { address: 'later@example.org', status: 'deferred', reply: '451 4.2.0 busy' },
            { address: 'bad@example.org', status: 'bounced', reply: '550 5.1.1 unknown' },
          ],
          nextAttemptAt: next,
        });
        const stored = await queue.inspect(id);
        assert.ok(stored);
        assert.deepEqual(stored.recipients.map((r) => [r.address, r.status, r.attempts, r.lastReply]), [
          ['ok@example.org', 'delivered', 1, '250 2.0.0 ok'],
          ['later@example.org', 'deferred', 1, '451 4.2.0 busy'],
          ['bad@example.org', 'bounced', 1, '550 5.1.1 unknown'],
        ]);
        assert.equal(stored.nextAttemptAt, next);
        assert.equal(stored.recipients[1].updatedAt, clock.now());
        clock.advance(1_000);
        const [retry] = await queue.lease(1, 60_000);
        assert.equal(retry.message.id, id);
        // An outcome for a finished recipient changes nothing.
        await queue.settle(retry, {
          outcomes: [
            { address: 'ok@example.org', status: 'bounced', reply: '550 late' },
            { address: 'later@example.org', status: 'delivered', reply: '250 ok' },
          ],
        });
        assert.equal(await queue.inspect(id), undefined, 'all recipients done: the message is gone');
        await assert.rejects(queue.read(id));
        assert.deepEqual(await queue.list(), []);
      } finally {
        await subject.cleanup();
      }
    });

    it('a lease runs out at its deadline; the stale holder can no longer settle', async () => {
      try {
        const id = await enqueue();
        const [first] = await queue.lease(1, 1_000);
        assert.equal(first.deadline, clock.now() + 1_000);
        assert.deepEqual(await queue.lease(1, 1_000), [], 'leased messages are not leased twice');
        clock.advance(1_001);
        const [second] = await queue.lease(1, 1_000);
        assert.equal(second?.message.id, id, 'due again after the deadline');
        assert.notEqual(second.token, first.token);
        assert.equal(await queue.settle(first, { outcomes: [{ address: 'a@example.org', status: 'delivered' }] }), false);
        assert.ok(await queue.inspect(id), 'the stale settle changed nothing');
        assert.equal(await queue.settle(second, { outcomes: [{ address: 'a@example.org', status: 'delivered' }] }), true);
        assert.equal(await queue.inspect(id), undefined);
      } finally {
        await subject.cleanup();
      }
    });

    it('abandon makes a message due again at once', async () => {
      try {
        const id = await enqueue();
        const [lease] = await queue.lease(1, 60_000);
        await queue.abandon(lease);
        const [again] = await queue.lease(1, 60_000);
        assert.equal(again?.message.id, id);
        assert.equal(again.message.attempts, 0, 'abandon is not an attempt');
      } finally {
        await subject.cleanup();
      }
    });

    it('abandon with a due time postpones the message without counting an attempt', async () => {
      try {
        const id = await enqueue();
        const [lease] = await queue.lease(1, 60_000);
        await queue.abandon(lease, clock.now() + 30_000);
        assert.deepEqual(await queue.lease(1, 60_000), [], 'not due before the time given');
        assert.equal(await queue.nextDueAt(), clock.now() + 30_000);
        assert.equal((await queue.inspect(id))?.nextAttemptAt, clock.now() + 30_000, 'operators see when it is due');
        clock.advance(30_000);
        const [again] = await queue.lease(1, 60_000);
        assert.equal(again?.message.id, id);
        assert.equal(again.message.attempts, 0, 'a postponement is not an attempt');
      } finally {
        await subject.cleanup();
      }
    });

    it('concurrent leasers never get the same message', async () => {
      try {
        const ids = new Set<string>();
        for (let i = 0; i < 30; i++) ids.add(await enqueue([`r${i}@example.org`], { at: clock.now() - 30 + i }));
        const peer = await subject.peer();
        const leased: string[] = [];
        const worker = async (q: Queue) => {
          for (;;) {
            const leases = await q.lease(4, 60_000);
            if (leases.length === 0) return;
            leased.push(...leases.map((l) => l.message.id));
          }
        };
        await Promise.all([worker(queue), worker(peer), worker(queue), worker(peer)]);
        assert.equal(leased.length, 30, `each message leased exactly once (got ${leased.length} leases)`);
        assert.deepEqual(new Set(leased), ids);
      } finally {
        await subject.cleanup();
      }
    });

    it('hold, release, retry, remove and claim', async () => {
      try {
        const id = await enqueue();
        assert.equal(await queue.hold(id), true);
        assert.deepEqual(await queue.lease(1, 60_000), [], 'held messages are not leased');
        assert.equal((await queue.inspect(id))?.held, true);
        assert.deepEqual(await queue.stats(), { active: 0, deferred: 0, held: 1 });
        const claimed = await queue.claim(id, 60_000);
        assert.equal(claimed?.message.id, id, 'an operator can claim a held message');
        assert.equal(await queue.claim(id, 60_000), undefined, 'but not one that is leased');
        await queue.abandon(claimed);
        assert.equal(await queue.release(id), true);
        const [lease] = await queue.lease(1, 60_000);
        assert.equal(lease?.message.id, id);
        await queue.settle(lease, { outcomes: [{ address: 'a@example.org', status: 'deferred', reply: '451 later' }], nextAttemptAt: clock.now() + 3_600_000 });
        assert.deepEqual(await queue.stats(), { active: 0, deferred: 1, held: 0 });
        assert.equal(await queue.retry(id), true);
        assert.equal((await queue.lease(1, 60_000))[0]?.message.id, id, 'retry makes it due now');
        assert.equal(await queue.remove(id), true);
        assert.equal(await queue.inspect(id), undefined);
        for (const operation of ['retry', 'hold', 'release', 'remove'] as const) {
          assert.equal(await queue[operation]('000000000-0000000000000000'), false, `${operation} of an unknown id is false`);
        }
        assert.deepEqual(await queue.list(), []);
      } finally {
        await subject.cleanup();
      }
    });

    it('lists with filters by state, domain, sender and age', async () => {
      try {
        const now = clock.now();
        const old = await enqueue(['x@one.test'], { at: now - 3_600_000, from: 'alice@example.org' });
        const fresh = await enqueue(['y@two.test', 'z@one.test'], { at: now, from: 'bob@example.org' });
        await queue.hold(fresh);
        const ids = async (filter: Parameters<Queue['list']>[0]) => (await queue.list(filter)).map((m) => m.id);
        assert.deepEqual(await ids({}), [old, fresh], 'oldest first');
        assert.deepEqual(await ids({ state: 'held' }), [fresh]);
        assert.deepEqual(await ids({ state: 'active' }), [old]);
        assert.deepEqual(await ids({ domain: 'two.test' }), [fresh]);
        assert.deepEqual(await ids({ domain: 'ONE.test' }), [old, fresh]);
        assert.deepEqual(await ids({ sender: 'Alice@example.org' }), [old]);
        assert.deepEqual(await ids({ olderThanMs: 60_000 }), [old]);
        assert.deepEqual(await ids({ limit: 1 }), [old]);
      } finally {
        await subject.cleanup();
      }
    });

    it('pages through a listing with limit and a cursor, filters applied, without skipping or repeating', async () => {
      try {
        const now = clock.now();
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) ids.push(await enqueue([i % 2 === 0 ? 'a@even.test' : 'b@odd.test'], { at: now - 10_000 + i * 1_000 }));
        await queue.hold(ids[3]);
        const pages: string[][] = [];
        let after: string | undefined;
        for (;;) {
          const page = await queue.list({ limit: 3, after });
          if (page.length === 0) break;
          pages.push(page.map((m) => m.id));
          after = listCursor(page[page.length - 1]);
        }
        assert.deepEqual(pages, [ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)]);
        const even = await queue.list({ domain: 'even.test', limit: 2 });
        assert.deepEqual(even.map((m) => m.id), [ids[0], ids[2]]);
        assert.deepEqual((await queue.list({ domain: 'even.test', limit: 2, after: listCursor(even[1]) })).map((m) => m.id), [ids[4], ids[6]]);
        assert.deepEqual((await queue.list({ state: 'active', limit: 2, after: listCursor({ receivedAt: now - 10_000 + 2_000, id: ids[2] }) })).map((m) => m.id), [ids[4], ids[5]], 'the held one is skipped');
      } finally {
        await subject.cleanup();
      }
    });

    it('keeps counts (by state and destination) equal to a listing through every kind of change and a restart', async () => {
      try {
        assert.ok(queue.counts, 'every queue in this repository keeps counters');
        const agree = async (q: ContractQueue, when: string) => {
          const listed = countMessages(await q.list());
          assert.deepEqual(await q.counts?.(), listed, `counts agree with a listing ${when}`);
          assert.deepEqual(await q.stats(), listed.states, `stats agree with a listing ${when}`);
        };
        await agree(queue, 'when empty');
        const now = clock.now();
        const one = await enqueue(['a@one.test', 'b@two.test'], { at: now - 5 });
        const two = await enqueue(['c@two.test', 'd@two.test'], { at: now - 4 });
        const three = await enqueue(['e@three.test'], { at: now - 3 });
        const four = await enqueue(['f@one.test'], { at: now - 2 });
        await enqueue(['g@four.test'], { at: now - 1 });
        await agree(queue, 'after enqueues');
        const [first, second, third] = await queue.lease(3, 60_000);
        assert.deepEqual([first.message.id, second.message.id, third.message.id], [one, two, three]);
        await queue.settle(first, { outcomes: [{ address: 'a@one.test', status: 'delivered' }, { address: 'b@two.test', status: 'deferred', reply: '451 later' }], nextAttemptAt: now + 3_600_000 });
        await queue.settle(second, { outcomes: [{ address: 'c@two.test', status: 'bounced', reply: '550 no' }, { address: 'd@two.test', status: 'delivered' }] });
        await queue.abandon(third, now + 60_000);
        await agree(queue, 'after settles and an abandon');
        await queue.hold(three);
        await queue.hold(four);
        await queue.release(four);
        await queue.retry(one);
        assert.equal(await queue.remove(three), true);
        await agree(queue, 'after hold, release, retry and remove');
        assert.deepEqual((await queue.counts?.())?.destinations['two.test'], { messages: 1, recipients: 1 });
        const restarted = await subject.restart();
        await agree(restarted, 'after a restart');
      } finally {
        await subject.cleanup();
      }
    });

    it('wakes listeners when mail becomes due (on every node)', async () => {
      try {
        const peer = await subject.peer();
        let woken = 0;
        const stop = peer.onDue(() => woken++);
        await enqueue();
        const deadline = Date.now() + 3_000;
        while (woken === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
        stop();
        assert.ok(woken > 0, 'the listener heard of the new message');
      } finally {
        await subject.cleanup();
      }
    });

    it('survives a crash: stored messages are there after a restart, a held lease comes back', async () => {
      try {
        const a = await enqueue(['a@example.org'], { at: clock.now() - 2 });
        const b = await enqueue(['b@example.org'], { at: clock.now() - 1 });
        const [lease] = await queue.lease(1, 30_000);
        assert.equal(lease.message.id, a);
        await queue.settle((await queue.lease(1, 30_000))[0], { outcomes: [{ address: 'b@example.org', status: 'deferred', reply: '451 later' }], nextAttemptAt: clock.now() + 10_000 });
        const restarted = await subject.restart();
        const stored = await restarted.list();
        assert.deepEqual(stored.map((m) => m.id), [a, b]);
        assert.equal(stored[1].recipients[0].lastReply, '451 later', 'recorded outcomes survive');
        clock.advance(30_001);
        const leases = await restarted.lease(10, 30_000);
        assert.deepEqual(leases.map((l) => l.message.id).sort(), [a, b].sort(), 'the crashed holder\'s lease ran out; the deferred one is due');
        assert.equal(await text(await restarted.read(a)), `${HEADER}body of ${a}\r\n`);
      } finally {
        await subject.cleanup();
      }
    });
  });
}

/**
 * The factory for a queue that one process owns on local disk (queue-spool,
 * queue-journal): the "other node" is the same queue, a restart a new
 * instance on the same directory (the old one is not closed, as after a crash).
 */
export function localQueueFactory(build: (dataDir: string, clock: ManualClock) => ContractQueue): QueueFactory {
  return async (clock) => {
    const dir = tempDir('petrel-local-queue-');
    const make = async (): Promise<ContractQueue> => {
      const queue = build(dir.path, clock);
      await queue.start?.();
      return queue;
    };
    const opened: ContractQueue[] = [await make()];
    return {
      queue: opened[0],
      peer: async () => opened[0],
      restart: async () => {
        const queue = await make();
        opened.push(queue);
        return queue;
      },
      cleanup: async () => {
        for (const queue of opened) await queue.close?.();
        dir.remove();
      },
    };
  };
}
