import 'reflect-metadata';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { NewMessage } from '../core/queue/contract.js';
import { newQueueId } from '../core/queue/queue-id.js';
import { makePaths } from '../core/paths.js';
import { Spool } from '../core/spool/spool.js';
import JournalQueue from '../plugins/queue-journal/index.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { LogCapture } from './harness/log-capture.js';
import { tempDir } from './harness/temp-dir.js';

const HEADER = 'Subject: journal\r\n\r\n';

/**
 * What a crash, a truncated file or a damaged disk leaves in the journal,
 * and what recovery makes of it: each test stores messages, closes the queue
 * (or abandons it, as a crash would), changes the segment files the way the
 * failure would, and starts a new queue on them.
 */
describe('queue-journal: recovery', () => {
  let dir: ReturnType<typeof tempDir>;
  let clock: ManualClock;
  let opened: JournalQueue[];
  let logs: LogCapture;

  beforeEach(() => {
    counter = 0;
    dir = tempDir('petrel-journal-recovery-');
    clock = new ManualClock();
    opened = [];
    logs = new LogCapture('info');
  });
  afterEach(async () => {
    for (const queue of opened) await queue.close();
    dir.remove();
  });

  async function open(segmentSize = 32 * 1024 * 1024, inlineLimit = 64 * 1024): Promise<JournalQueue> {
    const queue = new JournalQueue({ directory: 'queue', inlineLimit, segmentSize }, makePaths(dir.path, dir.path), clock, logs.logger, new Spool(dir.path));
    await queue.start();
    opened.push(queue);
    return queue;
  }

  let counter = 0;
  async function message(body = `body ${++counter}\r\n`, inMemory = true): Promise<NewMessage> {
    const id = newQueueId(clock.now());
    const bytes = Buffer.from(HEADER + body);
    const path = join(dir.path, `incoming-${id}`);
    writeFileSync(path, bytes);
    return {
      id,
      envelope: { from: 'sender@example.org', smtpUtf8: false, bodyType: '8bitmime', requireTls: false },
      recipients: [{ address: 'a@example.org' }],
      origin: { remoteAddress: '192.0.2.1', listener: 'mx' },
      receivedAt: clock.now(),
      headerBlock: Buffer.from(HEADER),
      file: { path, size: bytes.length, bodyOffset: HEADER.length, content: inMemory ? bytes : undefined },
    };
  }

  async function enqueue(queue: JournalQueue, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const m = await message();
      await queue.enqueue(m);
      ids.push(m.id);
    }
    return ids;
  }

  const segmentsDir = () => join(dir.path, 'queue', 'journal');
  const segments = () => readdirSync(segmentsDir()).sort().map((name) => join(segmentsDir(), name));
  // Sorted: messages enqueued at the same instant are listed by id, not in the order they were written.
  const ids = async (queue: JournalQueue) => (await queue.list()).map((m) => m.id).sort();

  it('shares one write and one fdatasync among concurrent enqueues, and each resolves with its record on disk', async () => {
    const queue = await open();
    const messages = await Promise.all(Array.from({ length: 20 }, () => message()));
    await Promise.all(messages.map((m) => queue.enqueue(m)));
    assert.ok(queue.syncs <= 2, `20 concurrent enqueues took ${queue.syncs} fdatasyncs (the first alone, the rest together)`);
    // Read back by a queue that never saw them in memory.
    const restarted = await open();
    assert.deepEqual(await ids(restarted), messages.map((m) => m.id).sort());
    for (const m of messages) assert.equal(await text(await restarted.read(m.id)), HEADER + m.file.content!.subarray(HEADER.length).toString());
  });

  it('ignores a torn tail: a record cut short by a crash in the last segment', async () => {
    const queue = await open();
    const kept = await enqueue(queue, 3);
    const [last] = segments().slice(-1);
    const whole = statSync(last).size;
    // A fourth record was being written when the machine died: only part of it reached the disk.
    await queue.enqueue(await message('the torn one\r\n'));
    truncateSync(last, whole + 30);
    const restarted = await open();
    assert.deepEqual(await ids(restarted), [...kept].sort());
    assert.equal(logs.lines.filter((l) => /not a whole record \(a write torn by a crash\); ignored/.test(l.msg ?? '')).length, 1);
    // And the journal goes on: new messages after the torn tail are kept too.
    const more = await enqueue(restarted, 1);
    assert.deepEqual(await ids(await open()), [...kept, ...more].sort());
  });

  it('recovers a truncated segment up to its last whole record', async () => {
    const queue = await open(2048);
    const stored = await enqueue(queue, 12);
    const files = segments();
    assert.ok(files.length >= 3, `several segments (${files.length})`);
    // A sealed segment in the middle loses its last 100 bytes (a copy cut short, a file system repair).
    const victim = files[1];
    const recordsBefore = new Set((await ids(queue)));
    truncateSync(victim, statSync(victim).size - 100);
    const restarted = await open(2048);
    const after = await ids(restarted);
    const lost = stored.filter((id) => !after.includes(id));
    assert.equal(lost.length, 1, 'only the record cut short is lost');
    assert.ok(after.every((id) => recordsBefore.has(id)));
    for (const id of after) assert.match(await text(await restarted.read(id)), /^Subject: journal/);
  });

  it('skips a record with a wrong checksum in the middle of a segment, keeps it in corrupt/, and reads the records after it', async () => {
    const queue = await open();
    const stored = await enqueue(queue, 5);
    const [file] = segments();
    const bytes = readFileSync(file);
    // Flip a byte inside the third record's body: its checksum no longer matches.
    const third = bytes.indexOf(Buffer.from('body 3'));
    assert.ok(third > 0);
    bytes[third] ^= 0xff;
    writeFileSync(file, bytes);
    const restarted = await open();
    const after = await ids(restarted);
    assert.deepEqual(after, [stored[0], stored[1], stored[3], stored[4]].sort(), 'the damaged message is lost, those after it are not');
    const [damage] = logs.find({ code: 'PETREL_QUEUE_CORRUPT' });
    assert.ok(damage, 'the damage is logged as an error');
    assert.equal(damage.level, 'error');
    assert.ok(existsSync(String(damage.kept)), 'the damaged bytes are kept for a human');
    assert.ok(readFileSync(String(damage.kept)).includes(Buffer.from('ody 3')));
  });

  it('deletes a segment once every message in it has left the queue', async () => {
    const queue = await open(2048);
    await enqueue(queue, 10);
    const before = segments();
    assert.ok(before.length >= 3, `several segments (${before.length})`);
    for (let leases = await queue.lease(100, 60_000); leases.length > 0; leases = await queue.lease(100, 60_000)) {
      for (const lease of leases) await queue.settle(lease, { outcomes: [{ address: 'a@example.org', status: 'delivered' }] });
    }
    assert.deepEqual(await queue.list(), []);
    // The remove records went into the newest segments; every older one is gone.
    const left = segments();
    assert.ok(!left.includes(before[0]) && left.length < before.length, `old segments deleted (${before.length} → ${left.length})`);
    assert.deepEqual(await ids(await open(2048)), [], 'nothing comes back after a restart');
  });

  it('copies a long-deferred message forward so old segments can go, keeping its state', async () => {
    const queue = await open(4096);
    const [old] = await enqueue(queue, 1);
    const [lease] = await queue.lease(1, 60_000);
    assert.equal(await queue.settle(lease, { outcomes: [{ address: 'a@example.org', status: 'deferred', reply: '451 4.4.1 later' }], nextAttemptAt: clock.now() + 86_400_000 }), true);
    // Traffic goes through: many messages accepted and delivered while the deferred one waits.
    for (let round = 0; round < 40; round++) {
      await enqueue(queue, 2);
      for (const l of await queue.lease(10, 60_000)) await queue.settle(l, { outcomes: [{ address: 'a@example.org', status: 'delivered' }] });
    }
    await queue.close(); // waits for a compaction under way
    opened.splice(opened.indexOf(queue), 1);
    const files = segments();
    assert.ok(files.length <= 6, `old segments were compacted away (${files.length} left)`);
    assert.ok(!files.some((f) => f.endsWith('000000000001.seg')), 'the first segment is gone');
    const restarted = await open(4096);
    const [message] = await restarted.list();
    assert.equal(message?.id, old);
    assert.equal(message.attempts, 1);
    assert.equal(message.recipients[0].lastReply, '451 4.4.1 later');
    assert.equal(message.nextAttemptAt, clock.now() + 86_400_000);
    assert.equal(await text(await restarted.read(old)), `${HEADER}body 1\r\n`);
  });

  it('keeps large messages a file each, and removes a file no record names (a crash before the record)', async () => {
    const queue = await open(32 * 1024 * 1024, 100);
    const big = await message('x'.repeat(500) + '\r\n', false);
    await queue.enqueue(big);
    const largeDir = join(dir.path, 'queue', 'large');
    assert.deepEqual(readdirSync(largeDir), [big.id]);
    await appendFile(join(largeDir, 'orphan'), 'left by a crash');
    const restarted = await open(32 * 1024 * 1024, 100);
    assert.deepEqual(readdirSync(largeDir), [big.id]);
    assert.equal(await text(await restarted.read(big.id)), `${HEADER}${'x'.repeat(500)}\r\n`);
    const [lease] = await restarted.lease(1, 60_000);
    await restarted.settle(lease, { outcomes: [{ address: 'a@example.org', status: 'delivered' }] });
    assert.deepEqual(readdirSync(largeDir), [], 'the file goes with the message');
  });

  it('refuses a directory that holds queue-spool messages', async () => {
    const messages = join(dir.path, 'queue', 'messages');
    mkdirSync(messages, { recursive: true });
    writeFileSync(join(messages, 'x.msg'), 'spooled');
    await assert.rejects(open(), { code: 'PETREL_QUEUE_FOREIGN' });
  });
});
