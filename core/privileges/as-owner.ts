import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Runs `work` with the effective user and group of `directory`'s owner when
 * this process is root and the directory belongs to another user: for what
 * root does inside the data directory (the generated certificate before the
 * switch, a maildrop made by root's `petrel sendmail`, the users file, a
 * DKIM key or the queue an operator's `petrel user`, `dkim keygen` or
 * `queue` changes). A directory not made yet is its nearest parent's: the
 * owner of `dataDir/dkim` is who would make it.
 *
 * That directory is the server user's, who may have put anything in it: a
 * link `tls/self-signed.key -> /etc/shadow`, or `maildrop` swapped for a link
 * between a check and a chmod. What root writes, reads, chmods or makes there
 * by name would follow it, and a compromised server would own the machine at
 * the next start. With the owner's ids the kernel applies the owner's
 * permissions, so a planted link reaches nothing the owner could not reach
 * anyway, and what is made belongs to the owner without a chown (Postfix's
 * set_eugid does the same).
 *
 * Only the effective ids change (root gets them back after `work`), and
 * nothing else may run meanwhile: call it while nothing else runs (the start
 * before connections are served, the sendmail command). Supplementary groups
 * are root's own otherwise and are narrowed to the owner's group meanwhile.
 */
export async function asOwnerOf<T>(directory: string, work: () => Promise<T>): Promise<T> {
  if (process.geteuid?.() !== 0) return work();
  const owner = await ownerOf(directory);
  if (owner.uid === 0) return work();
  const groups = process.getgroups?.() ?? [];
  const egid = process.getegid?.() ?? 0;
  try {
    process.setgroups?.([owner.gid]);
    process.setegid?.(owner.gid);
    process.seteuid?.(owner.uid);
    return await work();
  } finally {
    process.seteuid?.(0);
    process.setegid?.(egid);
    process.setgroups?.(groups);
  }
}

/** The ids of `path`'s owner, or of its nearest parent that exists. */
async function ownerOf(path: string): Promise<{ uid: number; gid: number }> {
  for (let at = resolve(path); ; at = dirname(at)) {
    try {
      return await stat(at);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw error;
    }
  }
}
