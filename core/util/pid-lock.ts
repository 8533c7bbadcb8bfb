import { readFile, rm, writeFile } from 'node:fs/promises';
import { processIsAlive } from './process-alive.js';

/**
 * A lock file holding the pid of its owner, so two processes never run the
 * same directory. A lock whose process is gone (a crash, kill -9) is stale
 * and taken over.
 */
export class PidLock {
  #held = false;

  constructor(readonly path: string) {}

  /** Resolves true if the lock is ours now; false if a live process holds it. */
  async acquire(): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.path, `${process.pid}\n`, { flag: 'wx' });
        this.#held = true;
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = await this.owner();
      if (owner !== undefined && owner !== process.pid && processIsAlive(owner)) return false;
      await rm(this.path, { force: true });
    }
    return false;
  }

  async owner(): Promise<number | undefined> {
    const text = await readFile(this.path, 'utf8').catch(() => '');
    const pid = Number.parseInt(text, 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await rm(this.path, { force: true });
  }
}
