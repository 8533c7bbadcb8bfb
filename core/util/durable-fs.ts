import { open, rename, unlink, type FileHandle } from 'node:fs/promises';


/**
 * The file operations that make data survive a crash of the machine, the way
 * Postfix and maildir do it: write to a temporary name, fsync the file,
 * rename into place, fsync the directory (a rename is only durable once the
 * directory entry is).
 */

/** fsync a file that was written and closed by someone else (a stream). */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `tmpPath`, fsyncs it, and renames it to `finalPath`. Does
 * not fsync the directory. On failure (a full disk) the temporary file is
 * removed, so a failed write gives back the space it took.
 */
export async function writeAndRename(tmpPath: string, finalPath: string, data: string | Buffer): Promise<void> {
  let handle: FileHandle | undefined = await open(tmpPath, 'w', 0o640);
  try {
    await handle.writeFile(data);
    await handle.datasync();
    await handle.close();
    handle = undefined;
    await rename(tmpPath, finalPath);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(tmpPath).catch(() => undefined);
    throw error;
  }
}

/**
 * fsyncs a directory, sharing one fsync among everyone who asked while the
 * previous one ran (group commit). A caller's promise resolves only after an
 * fsync that started after its call, so every rename it made before calling
 * is durable.
 */
export class DirectorySyncer {
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  /** Kept open between syncs: opening the directory for every fsync would double the cost. */
  #handle: Promise<FileHandle> | undefined;

  constructor(readonly directory: string) {}

  sync(): Promise<void> {
    if (this.#running === undefined) {
      this.#running = this.#fsync().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#next ??= this.#running.then(
      () => this.#startQueued(),
      () => this.#startQueued(),
    );
    return this.#next;
  }

  #startQueued(): Promise<void> {
    this.#next = undefined;
    return this.sync();
  }

  async #fsync(): Promise<void> {
    this.#handle ??= open(this.directory, 'r');
    try {
      await (await this.#handle).sync();
    } catch (error) {
      // Reopen next time (the directory may have been replaced).
      const handle = this.#handle;
      this.#handle = undefined;
      await handle.then((h) => h.close()).catch(() => undefined);
      throw error;
    }
  }

  /** Releases the directory descriptor. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.then((h) => h.close()).catch(() => undefined);
  }
}

export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

