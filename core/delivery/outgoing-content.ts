import { Readable } from 'node:stream';
import { MessageHeaders } from '../spool/message-headers.js';
import type { OutgoingContent } from './outbound.js';

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Reads a message stream up to the end of its header block and stops there.
 * Returns the header block with its empty line (or the whole message if it
 * has no body).
 */
export async function readHeaderBlock(stream: Readable): Promise<Buffer> {
  let seen = Buffer.alloc(0);
  try {
    for await (const chunk of stream) {
      const searchFrom = Math.max(0, seen.length - 3);
      seen = Buffer.concat([seen, chunk as Buffer]);
      if (seen[0] === 13 && seen[1] === 10) return seen.subarray(0, 2);
      const end = seen.indexOf(HEADER_END, searchFrom);
      if (end >= 0) return seen.subarray(0, end + 4);
    }
    return seen;
  } finally {
    stream.destroy();
  }
}

/** Skips the first `count` bytes of a stream. */
async function* skipBytes(stream: Readable, count: number): AsyncGenerator<Buffer> {
  let left = count;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    if (left >= buffer.length) {
      left -= buffer.length;
      continue;
    }
    yield left > 0 ? buffer.subarray(left) : buffer;
    left = 0;
  }
}

/**
 * The message of one delivery as `transform` handlers see and change it:
 * the header block of `read`'s message parsed into editable MessageHeaders,
 * the body read again from `read` as needed (the queued message, or a
 * converted copy of it). Nothing is written back to the queue: each attempt
 * starts again from the stored message.
 */
export class QueuedContent implements OutgoingContent {
  private constructor(
    readonly headers: MessageHeaders,
    private readonly storedHeaderLength: number,
    private readonly read: () => Promise<Readable>,
  ) {}

  static async load(read: () => Promise<Readable>): Promise<QueuedContent> {
    const block = await readHeaderBlock(await read());
    return new QueuedContent(new MessageHeaders(block), block.length, read);
  }

  async stream(): Promise<Readable> {
    const headers = this.headers.toBuffer();
    const body = skipBytes(await this.read(), this.storedHeaderLength);
    return Readable.from(
      (async function* () {
        yield headers;
        yield* body;
      })(),
      { objectMode: false },
    );
  }
}
