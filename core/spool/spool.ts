import { mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { OpenFile } from '../util/open-file.js';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LineEndingInspector } from './line-ending-inspector.js';
import { IN_MEMORY_COPY_LIMIT, IncomingMessage, REPLACE_FILE } from './incoming-message.js';
import { readFile } from 'node:fs/promises';
import { CopyBudget } from './copy-budget.js';
import { WriteHealth } from '../util/write-health.js';

/** In-memory copies of small messages held at once, across all sessions (see CopyBudget). */
const IN_MEMORY_COPY_BUDGET = 32 * 1024 * 1024;

export interface ReceiveLimits {
  readonly maxBytes: number;
  readonly maxHeaderBytes: number;
}

export type ReceiveOutcome =
  | { readonly kind: 'received'; readonly message: IncomingMessage }
  | { readonly kind: 'bare-line-ending' | 'oversize' | 'header-too-large'; readonly bytes: number };

/**
 * Incoming messages while they arrive: small ones in memory, larger ones on
 * disk, so memory stays flat whatever the message size. A received file
 * stays open until the queue takes it (queue-spool appends its record and
 * fsyncs through the same descriptor) or it is discarded. A small message
 * has no file unless a queue asks for one (takeHandle): queue-journal and
 * queue-redis store its in-memory bytes directly. Nothing here is
 * acknowledged mail: the queue stores it before the client sees a 250, and
 * whatever is left at boot is from a crash before that point and is removed.
 */
export class Spool {
  readonly directory: string;
  /** Files received and still open for writing, until the queue takes them or they are discarded. */
  readonly #open = new Map<string, OpenFile>();
  /** Messages received in memory only (no file yet), until discarded. */
  readonly #inMemory = new Map<string, Buffer>();
  /** Files a queue took over: they are the queue's now, discard() leaves them alone. */
  readonly #taken = new Set<string>();
  readonly #copies: CopyBudget;
  /** Whether received messages can be written (a full disk makes every DATA fail). */
  readonly #writes: WriteHealth;
  /** Numbers the files of replaced bodies, which sit beside the message's first file. */
  #rewrites = 0;

  /**
   * `worker`: which of several worker processes this is; each has its own
   * directory (`incoming-worker-<i>` beside worker 0's `incoming`), because
   * init() removes what it finds there and another worker's files are live.
   */
  constructor(dataDir: string, copyBudgetBytes = IN_MEMORY_COPY_BUDGET, worker = 0) {
    this.directory = join(dataDir, 'spool', worker === 0 ? 'incoming' : `incoming-worker-${worker}`);
    this.#copies = new CopyBudget(copyBudgetBytes);
    this.#writes = new WriteHealth(this.directory);
  }

  /** Behind /ready: rejects while incoming messages cannot be written (see WriteHealth). */
  ready(): Promise<void> {
    return this.#writes.check();
  }

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    for (const leftover of await readdir(this.directory)) {
      await rm(join(this.directory, leftover), { force: true });
    }
  }

  /**
   * Receives a DATA stream and inspects it on the way. A small message (up
   * to IN_MEMORY_COPY_LIMIT, while the budget for copies allows) is kept in
   * memory only (SpooledFile.content): no file is written unless a queue
   * asks for one (takeHandle). As soon as a message outgrows that, what came
   * so far and every later chunk are written to its file as they come, one
   * write at a time, so a fast client is slowed to the disk's pace instead of
   * filling memory. Memory and files are given back when the message is
   * discarded (after queueing, the session discards what is left of it).
   */
  async receive(id: string, data: Readable, limits: ReceiveLimits): Promise<ReceiveOutcome> {
    const path = join(this.directory, id);
    const inspector = new LineEndingInspector(limits);
    let file: OpenFile | undefined;
    let copy: Buffer[] | undefined = [];
    try {
      for await (const chunk of data) {
        const keep = inspector.inspect(chunk as Buffer);
        if (keep.length === 0) continue;
        if (copy && inspector.bytes <= IN_MEMORY_COPY_LIMIT && this.#copies.reserve(path, keep.length)) {
          copy.push(keep);
          continue;
        }
        if (!file) {
          file = await this.#create(path);
          if (copy) await this.#write(file, Buffer.concat(copy));
          copy = undefined;
          this.#copies.release(path);
        }
        await this.#write(file, keep);
      }
      inspector.finish();
    } catch (error) {
      await this.discard(path);
      throw error;
    }
    this.#writes.succeeded();
    const bytes = inspector.bytes;
    const problem = inspector.bareLineEnding
      ? 'bare-line-ending'
      : bytes > limits.maxBytes
        ? 'oversize'
        : inspector.headerTooLarge
          ? 'header-too-large'
          : undefined;
    if (problem !== undefined || inspector.headerBlock === undefined) {
      await this.discard(path);
      return { kind: problem ?? 'header-too-large', bytes };
    }
    const header = inspector.headerBlock;
    const content = copy ? Buffer.concat(copy) : undefined;
    if (content) this.#inMemory.set(path, content);
    const message = new IncomingMessage({ path, size: bytes, bodyOffset: header.length, content }, header);
    return { kind: 'received', message };
  }

  async #create(path: string): Promise<OpenFile> {
    const file = await OpenFile.open(path, 'wx').catch((error: unknown) => {
      throw this.#writes.failed(error);
    });
    this.#open.set(path, file);
    return file;
  }

  async #write(file: OpenFile, data: Buffer): Promise<void> {
    await file.write(data).catch((error: unknown) => {
      throw this.#writes.failed(error);
    });
  }

  /**
   * Gives a received message a new body (a content filter rewrote it): the
   * header block as received, then `body`, go to a new file beside the old
   * one, which is discarded. The parsed headers and their edits stay as they
   * are. The body must already use CRLF line ends; it is written as given.
   */
  async replaceBody(message: IncomingMessage, body: readonly Buffer[]): Promise<void> {
    const old = message.file;
    const header = old.content ? old.content.subarray(0, old.bodyOffset) : (await readFile(old.path)).subarray(0, old.bodyOffset);
    const path = `${old.path}.${++this.#rewrites}`;
    const file = await this.#create(path);
    try {
      let position = 0;
      for (const chunk of [header, ...body]) {
        await file.write(chunk, position);
        position += chunk.length;
      }
      message[REPLACE_FILE]({ path, size: position, bodyOffset: header.length });
    } catch (error) {
      await this.discard(path);
      throw this.#writes.failed(error);
    }
    await this.discard(old.path);
  }

  /**
   * Hands the received file over to a queue that stores it in place (it may
   * append, fsync and rename it without opening it again), or undefined when
   * it is not open any more. A message kept in memory only gets its file
   * written now. The taker closes it.
   */
  async takeHandle(path: string): Promise<OpenFile | undefined> {
    const content = this.#inMemory.get(path);
    if (content && !this.#open.has(path)) {
      const file = await this.#create(path);
      await this.#write(file, content).catch(async (error: unknown) => {
        await this.discard(path);
        throw error;
      });
    }
    const handle = this.#open.get(path);
    if (handle) {
      this.#open.delete(path);
      this.#taken.add(path);
    }
    return handle;
  }

  /** Closes and removes a spooled file, unless a queue took it over (then it is the queue's). */
  async discard(path: string): Promise<void> {
    this.#copies.release(path);
    this.#inMemory.delete(path);
    if (this.#taken.delete(path)) return;
    const handle = this.#open.get(path);
    this.#open.delete(path);
    await handle?.close().catch(() => undefined);
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}
