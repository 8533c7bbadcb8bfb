import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FILLER = 'filler';

/**
 * A small tmpfs of the test's own, for tests of a full disk. It is mounted in
 * a private mount namespace (`unshare -m`) that a holder process keeps alive,
 * and the test reaches it through `/proc/<holder>/root`, so no mount shows up
 * on the host and nothing is left behind when the test dies. Needs root (or
 * user namespaces); without them `mount()` fails loudly.
 *
 *   const disk = await SmallDisk.mount(4 << 20);
 *   // ... a server with its dataDir under disk.path
 *   await disk.fill();   // every write now fails with ENOSPC
 *   await disk.free();
 */
export class SmallDisk {
  private constructor(
    readonly path: string,
    private readonly holder: ChildProcess,
    private readonly hostDir: string,
  ) {}

  static async mount(bytes: number): Promise<SmallDisk> {
    const hostDir = mkdtempSync(join(tmpdir(), 'petrel-disk-'));
    // The holder mounts the tmpfs over hostDir in its own namespace, says so, and waits to be killed.
    const script = `mount -t tmpfs -o size=${bytes},mode=0700 petrel-test "${hostDir}" && echo mounted && exec sleep 86400`;
    const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    holder.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const mounted = await new Promise<boolean>((resolve) => {
      holder.stdout?.on('data', (chunk: Buffer) => chunk.toString('utf8').includes('mounted') && resolve(true));
      holder.once('exit', () => resolve(false));
      holder.once('error', (error) => {
        output += error.message;
        resolve(false);
      });
    });
    if (!mounted) {
      rmSync(hostDir, { recursive: true, force: true });
      throw new Error(`could not mount a test tmpfs with unshare -m (root or user namespaces needed): ${output.trim()}`);
    }
    return new SmallDisk(`/proc/${holder.pid}/root${hostDir}`, holder, hostDir);
  }

  /** Writes a filler file until the file system refuses (ENOSPC): from then on every write fails. */
  async fill(): Promise<void> {
    const file = await open(join(this.path, FILLER), 'a');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) await file.write(chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      await file.close();
    }
    // Whatever is left is less than a chunk: fill it page by page.
    const page = await open(join(this.path, `${FILLER}-pages`), 'a');
    try {
      for (;;) await page.write(Buffer.alloc(4096, 1));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      await page.close();
    }
  }

  /** Deletes what fill() wrote. */
  async free(): Promise<void> {
    for (const name of [FILLER, `${FILLER}-pages`]) {
      await unlink(join(this.path, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  }

  /** Ends the namespace (the tmpfs goes once nothing has files open on it). */
  async unmount(): Promise<void> {
    if (this.holder.exitCode === null && this.holder.signalCode === null) {
      const exited = new Promise((resolve) => this.holder.once('exit', resolve));
      this.holder.kill('SIGKILL');
      await exited;
    }
    rmSync(this.hostDir, { recursive: true, force: true });
  }
}
