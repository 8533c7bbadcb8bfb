import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { IN_MEMORY_COPY_LIMIT } from '../core/spool/incoming-message.js';
import { Spool } from '../core/spool/spool.js';
import { RecentBodies } from '../core/queue/recent-bodies.js';
import SpoolQueue from '../plugins/queue-spool/index.js';
import { makePaths } from '../core/paths.js';
import { createLogger } from '../core/log/logger.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { text } from 'node:stream/consumers';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './harness/temp-dir.js';

const LIMITS = { maxBytes: 1024 * 1024, maxHeaderBytes: 64 * 1024 };

/** A message of about `size` bytes, delivered in chunks of 1000 bytes as a socket would. */
function dataStream(size: number): { bytes: Buffer; stream: Readable } {
  const header = 'Subject: copy\r\n\r\n';
  const line = 'x'.repeat(98) + '\r\n';
  const bytes = Buffer.from(header + line.repeat(Math.ceil((size - header.length) / line.length)));
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 1000) chunks.push(bytes.subarray(at, at + 1000));
  return { bytes, stream: Readable.from(chunks) };
}

describe('spool: in-memory copy of small messages', () => {
  it('keeps a small message in memory only, and writes its file when a queue asks for it', async () => {
    const dir = tempDir('petrel-spool-copy-');
    try {
      const spool = new Spool(dir.path);
      await spool.init();
      const { bytes, stream } = dataStream(10_000);
      const outcome = await spool.receive('small', stream, LIMITS);
      assert.equal(outcome.kind, 'received');
      if (outcome.kind !== 'received') return;
      const { file } = outcome.message;
      assert.deepEqual(file.content, bytes);
      assert.equal(existsSync(file.path), false, 'no file for a message the queue can take from memory');
      assert.deepEqual(await buffer(outcome.message.body()), bytes.subarray(file.bodyOffset));
      const handle = await spool.takeHandle(file.path);
      assert.ok(handle, 'a queue that stores files (queue-spool) gets one, open');
      assert.deepEqual(await readFile(file.path), bytes);
      await handle.close();
      await spool.discard(file.path);
      assert.equal(existsSync(file.path), true, 'a file taken over is the queue\'s: discard leaves it');
    } finally {
      dir.remove();
    }
  });

  it('keeps no copy of a message above the limit (memory stays flat for big messages)', async () => {
    const dir = tempDir('petrel-spool-copy-');
    try {
      const spool = new Spool(dir.path);
      await spool.init();
      const { bytes, stream } = dataStream(IN_MEMORY_COPY_LIMIT + 5_000);
      const outcome = await spool.receive('big', stream, LIMITS);
      assert.equal(outcome.kind, 'received');
      if (outcome.kind !== 'received') return;
      assert.equal(outcome.message.file.content, undefined);
      assert.deepEqual(await readFile(outcome.message.file.path), bytes, 'a big message is written to its file as it comes');
      assert.deepEqual(await buffer(outcome.message.body()), bytes.subarray(outcome.message.file.bodyOffset));
      await spool.discard(outcome.message.file.path);
      assert.equal(existsSync(outcome.message.file.path), false);
    } finally {
      dir.remove();
    }
  });
});

describe('queue-spool: recent bodies', () => {
  const entry = (bytes: number) => bytes + 128; // a body's bytes plus the per-entry overhead

  it('keeps at most maxBytes, counting each entry, dropping the oldest first', () => {
    const recent = new RecentBodies(entry(100) * 2);
    recent.add('a', Buffer.alloc(100));
    recent.add('b', Buffer.alloc(100));
    recent.add('c', Buffer.alloc(100));
    assert.equal(recent.get('a'), undefined);
    assert.equal(recent.get('b')?.length, 100);
    assert.equal(recent.get('c')?.length, 100);
    assert.equal(recent.bytes, entry(100) * 2);
    recent.add('too-big', Buffer.alloc(400));
    assert.equal(recent.get('too-big'), undefined);
    recent.add('empty', Buffer.alloc(0));
    assert.equal(recent.get('empty'), undefined, 'an empty body needs no file read: not kept');
    recent.delete('b');
    assert.equal(recent.bytes, entry(100));
    recent.add('c', Buffer.alloc(50));
    assert.equal(recent.bytes, entry(50), 'adding an id again replaces its body');
  });

  it('copies a view, so it does not pin the buffer it came from', () => {
    const recent = new RecentBodies(1024);
    const message = Buffer.from('header\r\n\r\nbody');
    recent.add('view', message.subarray(10));
    assert.equal(recent.get('view')?.toString(), 'body');
    assert.equal(recent.get('view')?.buffer.byteLength, 4);
  });
});

describe('spool: budget for in-memory copies', () => {
  it('gives no copy past the budget, and budget back when a message is discarded', async () => {
    const dir = tempDir('petrel-spool-copy-');
    try {
      const spool = new Spool(dir.path, 15_000);
      await spool.init();
      const received = async (id: string) => {
        const outcome = await spool.receive(id, dataStream(10_000).stream, LIMITS);
        assert.equal(outcome.kind, 'received');
        return outcome.kind === 'received' ? outcome.message.file : assert.fail();
      };
      const first = await received('first');
      assert.ok(first.content, 'within the budget');
      const second = await received('second');
      assert.equal(second.content, undefined, 'the first copy still holds 10 KB of the 15 KB budget');
      await spool.discard(first.path);
      await spool.discard(second.path);
      const third = await received('third');
      assert.ok(third.content, 'discarding gave the budget back');
      await spool.discard(third.path);
    } finally {
      dir.remove();
    }
  });
});

describe('queue-spool: first delivery from memory', () => {
  it('sends a freshly stored small message from its in-memory copy, and reads the file once it is not cached', async () => {
    const dir = tempDir('petrel-spool-copy-');
    const clock = new ManualClock();
    const make = async () => {
      const queue = new SpoolQueue({ directory: 'queue' }, makePaths(dir.path, dir.path), clock, createLogger({ level: 'silent' }), spool);
      await queue.start();
      return queue;
    };
    const spool = new Spool(dir.path);
    try {
      await spool.init();
      const outcome = await spool.receive('0000000aa-00000000000000aa', Readable.from([Buffer.from('Subject: s\r\n\r\nbody from memory\r\n')]), LIMITS);
      assert.equal(outcome.kind, 'received');
      if (outcome.kind !== 'received') return;
      const { message } = outcome;
      const queue = await make();
      const id = '0000000aa-00000000000000aa';
      await queue.enqueue({
        id,
        envelope: { from: 'a@example.org', smtpUtf8: false, bodyType: '7bit', requireTls: false },
        recipients: [{ address: 'b@example.net' }],
        origin: { remoteAddress: '192.0.2.1', helo: 'client.example', listener: 'mx' },
        receivedAt: clock.now(),
        headerBlock: Buffer.from('Subject: s\r\n\r\n'),
        file: message.file,
        messageId: undefined,
      });
      // Change the body in the queued file behind the queue's back (same length): only a read
      // of the file can see it.
      const fd = openSync(join(dir.path, 'queue', 'messages', `${id}.msg`), 'r+');
      writeSync(fd, Buffer.from('BODY FROM A FILE'), 0, 16, message.file.bodyOffset);
      closeSync(fd);
      assert.equal(await text(await queue.read(id)), 'Subject: s\r\n\r\nbody from memory\r\n');
      await queue.close();
      const restarted = await make();
      assert.equal(await text(await restarted.read(id)), 'Subject: s\r\n\r\nBODY FROM A FILE\r\n');
      await restarted.remove(id);
      await assert.rejects(restarted.read(id));
      await restarted.close();
    } finally {
      dir.remove();
    }
  });
});
