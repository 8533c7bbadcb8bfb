import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { MessageHeaders } from './message-headers.js';

/** Where a received message sits on disk. */
export interface SpooledFile {
  /**
   * The file of the DATA bytes exactly as received (dot-unstuffed), headers
   * included. For a message with `content` the file may not exist: the spool
   * writes it only when a queue asks for it (Spool.takeHandle).
   */
  readonly path: string;
  /** Bytes in the file. */
  readonly size: number;
  /** Bytes of the original header block, including its empty line: where the body starts. */
  readonly bodyOffset: number;
  /**
   * The message's bytes (all `size` of them), kept in memory for messages of
   * up to IN_MEMORY_COPY_LIMIT bytes (while the spool's budget for them
   * allows), so hooks, queues and deliveries do not read a small message
   * from disk. Set means the bytes may be in memory only (no file at `path`);
   * unset means they are in the file. Either way the queue makes them
   * durable before the 250.
   */
  readonly content?: Buffer;
}

/** Core-only: swaps the file behind a message (Spool.replaceBody); not exported from the public API. */
export const REPLACE_FILE = Symbol('petrel.replaceFile');

/** Messages up to this size keep an in-memory copy of their spooled bytes (SpooledFile.content). */
export const IN_MEMORY_COPY_LIMIT = 64 * 1024;

/**
 * A message that has been received in full: its body is on disk, its header
 * fields are parsed and editable. What the `message` and `queue` hooks get.
 */
export class IncomingMessage {
  readonly headers: MessageHeaders;
  #file: SpooledFile;

  constructor(file: SpooledFile, headerBlock: Buffer) {
    this.#file = file;
    this.headers = new MessageHeaders(headerBlock);
  }

  /** Where the message is on disk; a filter that replaces the body moves it to a new file. */
  get file(): SpooledFile {
    return this.#file;
  }

  [REPLACE_FILE](file: SpooledFile): void {
    this.#file = file;
  }

  /** Size as received, in bytes. */
  get size(): number {
    return this.file.size;
  }

  /** The body (everything after the header block), read from disk. */
  body(): Readable {
    return bodyStream(this.file);
  }

  /** The whole message as it will be queued: the current header block, then the body. */
  stream(): Readable {
    return messageStream(this.headers.toBuffer(), this.file);
  }
}

/** The body; bytes after `size` (a queue's own record, appended to the file) are not part of it. */
export function bodyStream(file: SpooledFile): Readable {
  if (file.bodyOffset >= file.size) return Readable.from([]);
  if (file.content) return Readable.from([file.content.subarray(file.bodyOffset, file.size)], { objectMode: false });
  return createReadStream(file.path, { start: file.bodyOffset, end: file.size - 1 });
}

/** A header block followed by the body of a spooled file, as one stream. */
export function messageStream(headerBlock: Buffer, file: SpooledFile): Readable {
  return Readable.from(
    (async function* () {
      yield headerBlock;
      yield* bodyStream(file);
    })(),
    { objectMode: false },
  );
}
