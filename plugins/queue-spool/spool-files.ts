import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { NewMessage, QueuedMessage } from '../../core/queue/contract.js';
import { messageStream } from '../../core/spool/incoming-message.js';
import { DirectorySyncer, fsyncFile, writeAndRename } from '../../core/util/durable-fs.js';

/** What a message's .json file holds: the queue record plus where its content is. */
export interface StoredMessage extends QueuedMessage {
  readonly format: 1;
  /** The outgoing header block, base64 (header bytes need not be UTF-8). */
  readonly headerBlock: string;
  /** Byte offset of the body in the .eml file. */
  readonly bodyOffset: number;
}

/**
 * The on-disk layout of queue-spool, and nothing else:
 *
 *   <directory>/messages/<id>.eml   the bytes as received (renamed from the incoming spool)
 *   <directory>/messages/<id>.json  envelope, recipient states, outgoing headers
 *   <directory>/tmp/                 .json files being written
 *   <directory>/corrupt/             records that could not be read, kept for a human
 *
 * A message exists once its .json is in messages/ and the directory is
 * fsynced; an .eml without a .json is from a crash before that point (never
 * acknowledged) and is removed on recovery.
 */
export class SpoolFiles {
  readonly messages: string;
  readonly #tmp: string;
  readonly #corrupt: string;
  readonly #syncer: DirectorySyncer;

  constructor(readonly directory: string) {
    this.messages = join(directory, 'messages');
    this.#tmp = join(directory, 'tmp');
    this.#corrupt = join(directory, 'corrupt');
    this.#syncer = new DirectorySyncer(this.messages);
  }

  async prepare(): Promise<void> {
    await Promise.all([this.messages, this.#tmp, this.#corrupt].map((dir) => mkdir(dir, { recursive: true })));
  }

  /** Makes a new message durable. Resolves only after everything is on disk. */
  async store(message: NewMessage, record: StoredMessage): Promise<void> {
    const eml = this.#eml(message.id);
    await fsyncFile(message.file.path);
    try {
      await rename(message.file.path, eml);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      // The spool and the queue are on different file systems: copy instead.
      await copyFile(message.file.path, eml);
      await fsyncFile(eml);
    }
    try {
      await this.write(record);
      await this.#syncer.sync();
    } catch (error) {
      await rm(eml, { force: true });
      throw error;
    }
  }

  /** Replaces a record atomically (temp file + rename). */
  async write(record: StoredMessage): Promise<void> {
    await writeAndRename(join(this.#tmp, `${record.id}.json`), this.#json(record.id), JSON.stringify(record));
  }

  async read(id: string): Promise<StoredMessage | undefined> {
    try {
      return JSON.parse(await readFile(this.#json(id), 'utf8')) as StoredMessage;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The message as it goes out: the stored header block, then the body. */
  content(record: StoredMessage): Readable {
    const file = { path: this.#eml(record.id), size: record.size, bodyOffset: record.bodyOffset };
    return messageStream(Buffer.from(record.headerBlock, 'base64'), file);
  }

  /** Removes a message. The record goes first, so a crash in between leaves an orphan .eml, which recovery removes. */
  async remove(id: string): Promise<void> {
    await rm(this.#json(id), { force: true });
    await rm(this.#eml(id), { force: true });
  }

  /** Every readable record; broken ones are moved to corrupt/ and reported. */
  async recover(onCorrupt: (id: string, error: Error) => void): Promise<StoredMessage[]> {
    await rm(this.#tmp, { recursive: true, force: true });
    await mkdir(this.#tmp, { recursive: true });
    const names = await readdir(this.messages);
    const records: StoredMessage[] = [];
    const withRecord = new Set<string>();
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -5);
      try {
        const record = JSON.parse(await readFile(join(this.messages, name), 'utf8')) as StoredMessage;
        if (record.format !== 1 || record.id !== id) throw new Error('not a queue-spool record');
        records.push(record);
        withRecord.add(id);
      } catch (error) {
        await rename(join(this.messages, name), join(this.#corrupt, name)).catch(() => undefined);
        await rename(this.#eml(id), join(this.#corrupt, `${id}.eml`)).catch(() => undefined);
        onCorrupt(id, error as Error);
      }
    }
    for (const name of names) {
      if (name.endsWith('.eml') && !withRecord.has(name.slice(0, -4))) await rm(join(this.messages, name), { force: true });
    }
    return records;
  }

  /** All records, read straight from disk (works while another process runs the queue). */
  async scan(): Promise<StoredMessage[]> {
    const records: StoredMessage[] = [];
    for (const name of await readdir(this.messages).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      const record = await this.read(name.slice(0, -5)).catch(() => undefined);
      if (record) records.push(record);
    }
    return records;
  }

  #eml(id: string): string {
    return join(this.messages, `${id}.eml`);
  }

  #json(id: string): string {
    return join(this.messages, `${id}.json`);
  }
}
