import { copyFile, mkdir, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectorySyncer, fsyncFile, type NewMessage } from 'petrel';
import type { OpenFile } from 'petrel/queue';

/**
 * Messages too large to go into the journal: each is the received file
 * itself, synced and renamed into large/<id> (the directory synced, shared
 * among concurrent callers) before its 'add' record is written. A file here
 * without a record is from a crash in between, and recovery removes it.
 */
export class LargeFiles {
  readonly #syncer: DirectorySyncer;

  constructor(readonly directory: string) {
    this.#syncer = new DirectorySyncer(directory);
  }

  prepare(): Promise<string | undefined> {
    return mkdir(this.directory, { recursive: true });
  }

  path(id: string): string {
    return join(this.directory, id);
  }

  /** Makes the received file durable under large/; `handle` is the spool's open descriptor, if it handed one over. */
  async store(message: NewMessage, handle: OpenFile | undefined): Promise<void> {
    const target = this.path(message.id);
    try {
      if (handle) {
        try {
          await handle.datasync();
        } finally {
          await handle.close();
        }
      } else {
        await fsyncFile(message.file.path);
      }
      await rename(message.file.path, target).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EXDEV') throw error;
        // The spool and the queue are on different file systems: copy instead.
        await copyFile(message.file.path, target);
        await fsyncFile(target);
      });
      await this.#syncer.sync();
    } catch (error) {
      await this.remove(message.id).catch(() => undefined);
      throw error;
    } finally {
      await unlinkIfThere(message.file.path).catch(() => undefined);
    }
  }

  remove(id: string): Promise<void> {
    return unlinkIfThere(this.path(id));
  }

  async ids(): Promise<string[]> {
    return readdir(this.directory);
  }

  close(): Promise<void> {
    return this.#syncer.close();
  }
}

async function unlinkIfThere(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
