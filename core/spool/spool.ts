import { mkdir, open, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LineEndingInspector } from './line-ending-inspector.js';
import { IncomingMessage } from './incoming-message.js';

export interface ReceiveLimits {
  readonly maxBytes: number;
  readonly maxHeaderBytes: number;
}

export type ReceiveOutcome =
  | { readonly kind: 'received'; readonly message: IncomingMessage }
  | { readonly kind: 'bare-line-ending' | 'oversize' | 'header-too-large'; readonly bytes: number };

/**
 * Incoming message bodies on disk while they arrive, so memory stays flat
 * whatever the message size. A file here is not acknowledged mail: the queue
 * takes it over (by rename, or by copying) before the client sees a 250, and
 * whatever is left at boot is from a crash before that point and is removed.
 */
export class Spool {
  readonly directory: string;

  constructor(dataDir: string) {
    this.directory = join(dataDir, 'spool', 'incoming');
  }

  async init(): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    for (const leftover of await readdir(this.directory)) {
      await rm(join(this.directory, leftover), { force: true });
    }
  }

  /**
   * Streams a DATA stream to disk and inspects it on the way. Chunks are
   * written as they come, one write at a time, so a fast client is slowed to
   * the disk's pace instead of filling memory.
   */
  async receive(id: string, data: Readable, limits: ReceiveLimits): Promise<ReceiveOutcome> {
    const path = join(this.directory, id);
    const inspector = new LineEndingInspector(limits);
    const file = await open(path, 'wx', 0o640);
    try {
      for await (const chunk of data) {
        const keep = inspector.inspect(chunk as Buffer);
        if (keep.length > 0) await file.write(keep);
      }
      inspector.finish();
      await file.close();
    } catch (error) {
      await file.close().catch(() => undefined);
      await this.discard(path);
      throw error;
    }
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
    const message = new IncomingMessage({ path, size: bytes, bodyOffset: header.length }, header);
    return { kind: 'received', message };
  }

  /** Removes a spooled file; a file the queue already moved away is not an error. */
  async discard(path: string): Promise<void> {
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}
