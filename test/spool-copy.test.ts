import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { IN_MEMORY_COPY_LIMIT } from '../core/spool/incoming-message.js';
import { Spool } from '../core/spool/spool.js';
import { RecentBodies } from '../plugins/queue-spool/recent-bodies.js';
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
  it('keeps a copy equal to the file for a small message, and serves the body from it', async () => {
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
      assert.deepEqual(await readFile(file.path), bytes, 'the file is still written: it is what becomes durable');
      assert.deepEqual(await buffer(outcome.message.body()), bytes.subarray(file.bodyOffset));
      await spool.discard(file.path);
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
      assert.deepEqual(await buffer(outcome.message.body()), bytes.subarray(outcome.message.file.bodyOffset));
      await spool.discard(outcome.message.file.path);
    } finally {
      dir.remove();
    }
  });
});

describe('queue-spool: recent bodies', () => {
  it('keeps at most maxBytes, dropping the oldest first', () => {
    const recent = new RecentBodies(10);
    recent.add('a', Buffer.alloc(4));
    recent.add('b', Buffer.alloc(4));
    recent.add('c', Buffer.alloc(4));
    assert.equal(recent.get('a'), undefined);
    assert.equal(recent.get('b')?.length, 4);
    assert.equal(recent.get('c')?.length, 4);
    assert.equal(recent.bytes, 8);
    recent.add('too-big', Buffer.alloc(11));
    assert.equal(recent.get('too-big'), undefined);
    recent.delete('b');
    assert.equal(recent.bytes, 4);
    recent.add('c', Buffer.alloc(2));
    assert.equal(recent.bytes, 2, 'adding an id again replaces its body');
    const message = Buffer.from('header\r\n\r\nbody');
    recent.add('view', message.subarray(10));
    assert.equal(recent.get('view')?.toString(), 'body');
    assert.equal(recent.get('view')?.buffer.byteLength, 4, 'a view is copied, so it does not pin the buffer it came from');
  });
});
