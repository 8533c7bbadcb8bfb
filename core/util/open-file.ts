import { close, fdatasync, open, write } from 'node:fs';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const writeAsync = promisify(write);
const datasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

/**
 * A file descriptor with the few operations the spool and the queue need.
 * On the accept path of every message, so it uses node:fs's callback API:
 * fs/promises' FileHandle costs noticeably more per call (an object per
 * open file, tracked for garbage collection), measured in bench/.
 */
export class OpenFile {
  #closed = false;

  private constructor(readonly fd: number) {}

  static async open(path: string, flags: string, mode = 0o640): Promise<OpenFile> {
    return new OpenFile(await openAsync(path, flags, mode));
  }

  /** Writes all of `data`, at `position` or at the current offset. */
  async write(data: Buffer, position: number | null = null): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await writeAsync(this.fd, data, offset, data.length - offset, position === null ? null : position + offset);
      offset += bytesWritten;
    }
  }

  datasync(): Promise<void> {
    return datasyncAsync(this.fd);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeAsync(this.fd);
  }
}
