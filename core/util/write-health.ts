import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** What a probe writes: more than nothing, so a file system without a free block refuses it. */
const PROBE = Buffer.alloc(512, 0x2e);

/**
 * Whether Petrel can write to a directory now, as far as it knows: from a
 * failed write (ENOSPC, EDQUOT, EIO, EMFILE...) until a write succeeds
 * again. `/ready` asks `check()`: nothing to do while writes succeed; while
 * they fail it tries a small write of its own each time, so readiness comes
 * back as soon as the disk takes data again, even when no mail is moving.
 */
export class WriteHealth {
  #failure: Error | undefined;

  constructor(
    readonly directory: string,
    /** Told when writes start failing (with the error) and when they work again (undefined). */
    private readonly onChange: (failure: Error | undefined) => void = () => undefined,
  ) {}

  /** Records a failed write; returns the error, for the caller to throw. */
  failed(error: unknown): unknown {
    const first = this.#failure === undefined;
    this.#failure = error instanceof Error ? error : new Error(String(error));
    if (first) this.onChange(this.#failure);
    return error;
  }

  succeeded(): void {
    if (this.#failure === undefined) return;
    this.#failure = undefined;
    this.onChange(undefined);
  }

  /** Runs a write, and records whether it worked. */
  async track<T>(write: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await write();
    } catch (error) {
      throw this.failed(error);
    }
    this.succeeded();
    return result;
  }

  /** Resolves when writes work (or are not known to fail); rejects naming the directory and the error. */
  async check(): Promise<void> {
    if (this.#failure === undefined) return;
    const path = join(this.directory, `.probe-${process.pid}`);
    try {
      await this.track(async () => {
        const file = await open(path, 'w');
        try {
          await file.write(PROBE);
          await file.datasync();
        } finally {
          await file.close();
        }
      });
    } catch (error) {
      throw new Error(`cannot write to ${this.directory}: ${(error as Error).message}`);
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }
}
