import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { processIsAlive } from 'petrel';
import { FILES_BEING_WRITTEN } from './maildir-writer.js';

/** maildir(5): a file in tmp/ not touched for 36 hours is a leftover, whoever wrote it. */
export const STALE_AFTER_MS = 36 * 3_600_000;

/** `<seconds>.M<microseconds>P<pid>Q<counter>.<host>`, the names MaildirWriter gives (Dovecot's form). */
const WRITER_NAME = /^\d+\.M\d+P(\d+)Q\d+\.(.+)$/;

/** The maildir subdirectories: never walked into as mailboxes. */
const MAILDIR_PARTS = new Set(['tmp', 'new', 'cur']);

export interface SweepResult {
  /** Paths removed. */
  readonly removed: string[];
  /** tmp/ files left alone (being written, or too recent to judge). */
  readonly kept: number;
}

/**
 * Removes what interrupted deliveries left in the `tmp/` directories of
 * every maildir under `root` (mailboxes, per-domain directories, Maildir++
 * folders). A writer killed between writing its copy and renaming it into
 * `new/` leaves a complete copy in `tmp/` for ever: the message itself was
 * not acknowledged to the queue, so it is delivered again, and the copy is
 * only dead weight (50 of them after 10 SIGKILLs under load). Removed:
 *
 * - any file not modified for 36 hours (maildir's own rule), whoever wrote it;
 * - at once, a file this host wrote (its name carries our host name and the
 *   writer's pid) when that process is gone, or is this process and the file
 *   is not one it is writing now (after a restart in a container, the pid is
 *   often the same).
 *
 * Files a live process on this host may still be writing, and recent files of
 * other hosts (a maildir shared over NFS), stay.
 */
export async function sweepStaleTmp(root: string, host: string, now: number): Promise<SweepResult> {
  const removed: string[] = [];
  let kept = 0;
  for await (const tmp of tmpDirectories(root)) {
    for (const name of await readdir(tmp).catch(() => [] as string[])) {
      const path = join(tmp, name);
      if (await isStale(path, name, host, now)) {
        await unlink(path).then(
          () => removed.push(path),
          () => undefined,
        );
      } else {
        kept++;
      }
    }
  }
  return { removed, kept };
}

async function isStale(path: string, name: string, host: string, now: number): Promise<boolean> {
  if (FILES_BEING_WRITTEN.has(path)) return false;
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return false;
  if (now - info.mtimeMs > STALE_AFTER_MS) return true;
  const writer = WRITER_NAME.exec(name);
  if (!writer || writer[2] !== host) return false;
  const pid = Number(writer[1]);
  return pid === process.pid || !processIsAlive(pid);
}

/** Every `tmp/` of a maildir under `root`, depth first; symbolic links are not followed. */
async function* tmpDirectories(root: string): AsyncGenerator<string> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const names = new Set(entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name));
  if (names.has('tmp') && (names.has('new') || names.has('cur'))) yield join(root, 'tmp');
  for (const name of names) {
    if (!MAILDIR_PARTS.has(name)) yield* tmpDirectories(join(root, name));
  }
}
