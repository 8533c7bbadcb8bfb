import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { copyFile, mkdir, open, opendir, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { DirectorySyncer, fsyncFile, type NewMessage, type QueuedMessage, writeAndRename } from 'petrel';
import { messageStream, OpenFile, RecentBodies } from 'petrel/queue';
import { join } from 'node:path';

/** Bodies of recently stored messages kept for their first delivery (see RecentBodies). */
const RECENT_BODIES_BYTES = 4 * 1024 * 1024;

/** A message's queue record: what the queue knows, plus where its content is. */
export interface StoredMessage extends QueuedMessage {
  readonly format: 1;
  /** The outgoing header block, base64 (header bytes need not be UTF-8). */
  readonly headerBlock: string;
  /** Byte offset of the body in the .msg file. */
  readonly bodyOffset: number;
}

/** `\n` and 20 decimal digits: where the record starts. The last bytes of every .msg file. */
const TRAILER_LENGTH = 21;

/** Records read at recovery between two turns of the event loop (the reads themselves are synchronous: see recover). */
const RECOVERY_BATCH = 512;

/**
 * The on-disk layout of queue-spool, and nothing else:
 *
 *   <directory>/messages/<id>.msg    the bytes as received, then the record as it was
 *                                     at acceptance (JSON), then a 21-byte trailer with
 *                                     the record's offset
 *   <directory>/messages/<id>.state  the record as it is now, once it has changed
 *                                     (delivery attempts, hold); supersedes the one in .msg
 *   <directory>/tmp/                  .state files being written
 *   <directory>/corrupt/              messages that could not be read, kept for a human
 *
 * One file per message makes acceptance cheap: the received file is still
 * open when the queue takes it, so storing is append the record, fsync,
 * rename into messages/, fsync the directory (shared by concurrent
 * enqueues). Postfix writes its queue files the same way. A .msg appears in
 * messages/ only complete and fsynced, so recovery can trust every one.
 */
export class SpoolFiles {
  readonly messages: string;
  /** .state files being written (and nothing else that matters: recovery empties it). */
  readonly tmp: string;
  readonly #corrupt: string;
  readonly #syncer: DirectorySyncer;
  readonly #recent = new RecentBodies(RECENT_BODIES_BYTES);

  constructor(readonly directory: string) {
    this.messages = join(directory, 'messages');
    this.tmp = join(directory, 'tmp');
    this.#corrupt = join(directory, 'corrupt');
    this.#syncer = new DirectorySyncer(this.messages);
  }

  async prepare(): Promise<void> {
    await Promise.all([this.messages, this.tmp, this.#corrupt].map((dir) => mkdir(dir, { recursive: true })));
  }

  /**
   * Makes a new message durable. `handle` is the received file, still open
   * (the spool hands it over); without one the file is opened again.
   * Resolves only after everything is on disk.
   */
  async store(message: NewMessage, record: StoredMessage, handle: OpenFile | undefined): Promise<void> {
    const target = this.#msg(message.id);
    try {
      const file = handle ?? (await OpenFile.open(message.file.path, 'r+'));
      try {
        await file.write(withTrailer(record, message.file.size), message.file.size);
        await file.datasync();
      } finally {
        await file.close();
      }
      await this.#moveIntoQueue(message.file.path, target);
    } catch (error) {
      // The spool left this file to us; a store that failed (a full disk) must not leave it behind.
      await unlinkIfThere(message.file.path).catch(() => undefined);
      throw error;
    }
    try {
      await this.#syncer.sync();
    } catch (error) {
      await rm(target, { force: true });
      throw error;
    }
    const { content, bodyOffset, size } = message.file;
    if (content) this.#recent.add(message.id, content.subarray(bodyOffset, size));
  }

  async #moveIntoQueue(from: string, to: string): Promise<void> {
    try {
      await rename(from, to);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      // The spool and the queue are on different file systems: copy instead.
      await copyFile(from, to);
      await fsyncFile(to);
      await unlink(from);
    }
  }

  /** Releases the descriptors kept open (the messages/ directory). */
  close(): Promise<void> {
    return this.#syncer.close();
  }

  /** Replaces the current record atomically (temp file, fsync, rename). */
  async write(record: StoredMessage): Promise<void> {
    await writeAndRename(join(this.tmp, `${record.id}.state`), this.#state(record.id), JSON.stringify(record));
  }

  /** `hasState` false skips looking for a .state file the caller already knows is not there. */
  async read(id: string, hasState = true): Promise<StoredMessage | undefined> {
    if (hasState) {
      try {
        return JSON.parse(await readFile(this.#state(id), 'utf8')) as StoredMessage;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    try {
      return await recordInMessage(this.#msg(id));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The message as it goes out: the stored header block, then the body. */
  content(record: StoredMessage): Readable {
    const headerBlock = Buffer.from(record.headerBlock, 'base64');
    const body = this.#recent.get(record.id);
    if (body) return Readable.from([headerBlock, body], { objectMode: false });
    const file = { path: this.#msg(record.id), size: record.size, bodyOffset: record.bodyOffset };
    return messageStream(headerBlock, file);
  }

  /**
   * Removes a message. The .msg goes first: a crash in between leaves an
   * orphan .state, which recovery removes, rather than a .msg whose stale
   * record would send it again.
   */
  async remove(id: string, hasState = true): Promise<void> {
    this.#recent.delete(id);
    await unlinkIfThere(this.#msg(id));
    if (hasState) await unlinkIfThere(this.#state(id));
  }

  /**
   * Hands every readable record to `onRecord` (with whether it has a .state
   * file), one at a time, so that a queue of a million is never in memory
   * at once; unreadable messages are moved to corrupt/ and reported. The
   * reads are synchronous, in batches between turns of the event loop: one
   * record is a few small reads of files just written (in the page cache),
   * and a round trip through the thread pool for each would make recovering
   * a big queue take minutes instead of seconds.
   */
  async recover(onRecord: (record: StoredMessage, hasState: boolean) => void, onCorrupt: (id: string, error: Error) => void): Promise<number> {
    await rm(this.tmp, { recursive: true, force: true });
    await mkdir(this.tmp, { recursive: true });
    const messages = new Set<string>();
    const states = new Set<string>();
    // opendir streams the names (readdir would hold them all, twice over, in one array).
    for await (const entry of await opendir(this.messages, { bufferSize: 1024 })) {
      if (entry.name.endsWith('.msg')) messages.add(entry.name.slice(0, -4));
      else if (entry.name.endsWith('.state')) states.add(entry.name.slice(0, -6));
    }
    let recovered = 0;
    const reader = new RecordReader();
    for (const id of messages) {
      const hasState = states.delete(id);
      try {
        const record = hasState ? reader.whole(this.#state(id)) : reader.inMessage(this.#msg(id));
        if (!record || record.format !== 1 || record.id !== id) throw new Error('not a queue-spool record');
        onRecord(record, hasState);
        recovered++;
      } catch (error) {
        for (const suffix of ['.msg', '.state']) {
          await rename(join(this.messages, `${id}${suffix}`), join(this.#corrupt, `${id}${suffix}`)).catch(() => undefined);
        }
        onCorrupt(id, error as Error);
      }
      if (recovered % RECOVERY_BATCH === 0) await nextTurn();
    }
    // What is left are .state files without their .msg: a removal that a crash interrupted.
    for (const id of states) await rm(this.#state(id), { force: true });
    return recovered;
  }

  /** All records, read straight from disk (works while another process runs the queue). */
  async scan(): Promise<StoredMessage[]> {
    const records: StoredMessage[] = [];
    for (const name of await readdir(this.messages).catch(() => [] as string[])) {
      if (!name.endsWith('.msg')) continue;
      const record = await this.read(name.slice(0, -4)).catch(() => undefined);
      if (record) records.push(record);
    }
    return records;
  }

  #msg(id: string): string {
    return join(this.messages, `${id}.msg`);
  }

  #state(id: string): string {
    return join(this.messages, `${id}.state`);
  }
}

async function unlinkIfThere(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** The record as JSON followed by the trailer that says where it starts (what store() appends to the received bytes). */
export function withTrailer(record: StoredMessage, recordOffset: number): Buffer {
  const json = Buffer.from(JSON.stringify(record));
  const trailer = Buffer.from(`\n${String(recordOffset).padStart(TRAILER_LENGTH - 1, '0')}`);
  return Buffer.concat([json, trailer]);
}

/** The offset of the record that a .msg file's trailer names (see withTrailer); throws on a bad trailer. */
function recordOffset(trailer: Buffer, size: number): number {
  const text = trailer.toString('latin1');
  const offset = Number(text.slice(1));
  if (text[0] !== '\n' || !/^\d+$/.test(text.slice(1)) || offset >= size - TRAILER_LENGTH) throw new Error('bad record trailer');
  return offset;
}

/**
 * Reads records without the thread pool, for recovery, through one buffer
 * that grows as needed: a buffer per record would leave the process's memory
 * fragmented (and its RSS high) after reading a big queue.
 */
class RecordReader {
  #buffer = Buffer.allocUnsafe(64 * 1024);

  /** A file that is one record (a .state). */
  whole(path: string): StoredMessage {
    const fd = openSync(path, 'r');
    try {
      const { size } = fstatSync(fd);
      return this.#parse(fd, 0, size);
    } finally {
      closeSync(fd);
    }
  }

  /** The record appended to a .msg file (see withTrailer). */
  inMessage(path: string): StoredMessage {
    const fd = openSync(path, 'r');
    try {
      const { size } = fstatSync(fd);
      if (size < TRAILER_LENGTH) throw new Error('no record trailer');
      readSync(fd, this.#buffer, 0, TRAILER_LENGTH, size - TRAILER_LENGTH);
      const offset = recordOffset(this.#buffer.subarray(0, TRAILER_LENGTH), size);
      return this.#parse(fd, offset, size - TRAILER_LENGTH - offset);
    } finally {
      closeSync(fd);
    }
  }

  #parse(fd: number, position: number, length: number): StoredMessage {
    if (this.#buffer.length < length) this.#buffer = Buffer.allocUnsafe(length);
    let read = 0;
    while (read < length) {
      const count = readSync(fd, this.#buffer, read, length - read, position + read);
      if (count === 0) throw new Error('the record ends early');
      read += count;
    }
    return JSON.parse(this.#buffer.toString('utf8', 0, length)) as StoredMessage;
  }
}

/** Reads the record appended to a .msg file (see withTrailer). */
async function recordInMessage(path: string): Promise<StoredMessage> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    if (size < TRAILER_LENGTH) throw new Error('no record trailer');
    const trailer = Buffer.alloc(TRAILER_LENGTH);
    await file.read(trailer, 0, TRAILER_LENGTH, size - TRAILER_LENGTH);
    const offset = recordOffset(trailer, size);
    const json = Buffer.alloc(size - TRAILER_LENGTH - offset);
    await file.read(json, 0, json.length, offset);
    return JSON.parse(json.toString('utf8')) as StoredMessage;
  } finally {
    await file.close();
  }
}
