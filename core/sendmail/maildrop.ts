import { constants } from 'node:fs';
import { chmod, mkdir, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { EXIT } from '../cli/exit-codes.js';
import { fsyncDirectory } from '../util/durable-fs.js';
import { SendmailFailure } from './sendmail-failure.js';

/**
 * The maildrop: where `petrel sendmail` leaves messages for the server to
 * pick up (Postfix's maildrop/ and postdrop). One file per message, named by
 * the queue id it will have:
 *
 *   <the message, CRLF line ends> <envelope JSON> \n PETREL-MAILDROP 1 <offset, 16 digits> \n
 *
 * The envelope goes last so the message can be written as it is read; the
 * fixed-size trailer says where the envelope starts. A file is created mode
 * 0600 and made 0740 only once complete and synced: the owner's execute bit
 * says "complete" (as Postfix marks its queue files), so the server never
 * picks up a message still being written.
 *
 * The directory is `<dataDir>/maildrop`, owned by the server's user, mode
 * 3733: anyone who can reach it may create files (and not list or read
 * others'), sticky so only the owner of a file (or the server) may remove it,
 * set-group-ID so every file gets the server's group, which is how the
 * server reads a file another user made 0740. Who made a file is its owner,
 * which the kernel vouches for: that is how the server knows which local user
 * sent a message.
 */

export const MAILDROP_MODE = 0o3733;
/** A complete maildrop file: read by its owner and the server's group; the execute bit marks it complete. */
export const COMPLETE_MODE = 0o740;
const TRAILER = /^PETREL-MAILDROP 1 (\d{16})\n$/;
const TRAILER_BYTES = 'PETREL-MAILDROP 1 0000000000000000\n'.length;
const MAX_ENVELOPE_BYTES = 4 * 1024 * 1024;

const address = z.string().regex(/^[^\s<>@]+@[^\s<>@]+$/);

export const maildropEnvelope = z.strictObject({
  from: z.union([z.literal(''), address]),
  to: z.array(address).min(1),
  notify: z.array(z.enum(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'])).optional(),
  ret: z.enum(['FULL', 'HDRS']).optional(),
  envid: z.string().max(100).optional(),
  bodyType: z.enum(['7bit', '8bitmime']),
  smtpUtf8: z.boolean(),
});

export type MaildropEnvelope = z.output<typeof maildropEnvelope>;

export function maildropDirectory(dataDir: string): string {
  return join(dataDir, 'maildrop');
}

/** True for a file whose writer finished (see COMPLETE_MODE). */
export function isComplete(mode: number): boolean {
  return (mode & 0o100) !== 0;
}

/**
 * Makes the maildrop directory and its corrupt/ when they are missing and
 * gives the maildrop its mode (explicitly: a umask would take the bits
 * others need away). Run by the data directory's owner (the server, or root
 * through asOwnerOf): both are then that user's, and corrupt/ exists before
 * anyone else can reach the maildrop to make one of their own.
 */
export async function ensureMaildrop(dataDir: string): Promise<string> {
  const directory = maildropDirectory(dataDir);
  await mkdir(directory, { recursive: true });
  const current = await stat(directory);
  if ((current.mode & 0o7777) !== MAILDROP_MODE) await chmod(directory, MAILDROP_MODE);
  await mkdir(join(directory, CORRUPT), { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return directory;
}

/** Where the server sets aside what is in the maildrop but is not a message (see pickup.ts). */
export const CORRUPT = 'corrupt';

/**
 * A maildrop file being written by `petrel sendmail`.
 *
 * The command first enters the maildrop (its working directory becomes it)
 * and checks, through ".", that it is one; the file is then made and synced
 * relative to it. The name `maildrop` is in the data directory, which the
 * server's user owns and could swap for a link between a check by name and a
 * write by name (to /etc/cron.d, say, where root's sendmail would leave a file
 * of root's); the directory a process stands in cannot be swapped.
 */
export class MaildropWriter {
  #written = 0;

  private constructor(
    /** For messages: `<directory>/<id>`. */
    readonly path: string,
    private readonly name: string,
    private readonly handle: FileHandle,
  ) {}

  /** Creates `<directory>/<id>`, new (never an existing file or a link someone planted), readable by nobody yet. */
  static async create(directory: string, id: string): Promise<MaildropWriter> {
    await enterMaildrop(directory);
    const handle = await open(id, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    return new MaildropWriter(join(directory, id), id, handle);
  }

  async write(chunk: Buffer): Promise<void> {
    await this.handle.write(chunk);
    this.#written += chunk.length;
  }

  /**
   * Appends the envelope and the trailer, syncs the data, marks the file
   * complete and syncs that too; the directory entry is synced when this user
   * may open the directory (root, the server's user), and otherwise is made
   * durable by the file system's journal with the file's own fsync (as with
   * Postfix's postdrop). Only then may sendmail exit 0.
   */
  async commit(envelope: MaildropEnvelope): Promise<void> {
    const offset = this.#written;
    await this.handle.write(`${JSON.stringify(envelope)}\nPETREL-MAILDROP 1 ${String(offset).padStart(16, '0')}\n`);
    await this.handle.datasync();
    await this.handle.chmod(COMPLETE_MODE);
    await this.handle.sync();
    await this.handle.close();
    await syncDirectoryIfAllowed('.');
  }

  /** Removes the unfinished file. */
  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await unlink(this.name).catch(() => undefined);
  }
}

/**
 * Makes `directory` the working directory, then checks that what was entered
 * is a maildrop, a directory of mode 3733 (only Petrel makes those; a link
 * to /etc/cron.d leads to one of mode 0755, owned by root).
 */
async function enterMaildrop(directory: string): Promise<void> {
  process.chdir(directory);
  const here = await stat('.');
  const mode = here.mode & 0o7777;
  if (!here.isDirectory() || mode !== MAILDROP_MODE) {
    throw new SendmailFailure(
      EXIT.noPermission,
      `${directory} is not Petrel's maildrop (a directory of mode 3733; this is mode ${mode.toString(8).padStart(4, '0')}, owned by uid ${here.uid}): ` +
        'a link in the data directory? not writing there; nothing was sent',
    );
  }
}

/**
 * Reads the envelope of an open maildrop file and where its message ends.
 * Throws (with what is wrong) for a file that is not a complete maildrop file.
 */
export async function readEnvelope(handle: FileHandle, size: number): Promise<{ envelope: MaildropEnvelope; messageBytes: number }> {
  if (size < TRAILER_BYTES) throw new Error('too short to be a maildrop file');
  const trailer = Buffer.alloc(TRAILER_BYTES);
  await handle.read(trailer, 0, TRAILER_BYTES, size - TRAILER_BYTES);
  const match = TRAILER.exec(trailer.toString('latin1'));
  if (!match) throw new Error('no maildrop trailer');
  const messageBytes = Number(match[1]);
  if (messageBytes === 0) throw new Error('no message before the envelope');
  const envelopeBytes = size - TRAILER_BYTES - messageBytes;
  if (envelopeBytes <= 1 || envelopeBytes > MAX_ENVELOPE_BYTES) throw new Error('bad envelope offset');
  const raw = Buffer.alloc(envelopeBytes);
  await handle.read(raw, 0, envelopeBytes, messageBytes);
  const parsed = maildropEnvelope.safeParse(JSON.parse(raw.toString('utf8')));
  if (!parsed.success) throw new Error(`bad envelope: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  return { envelope: parsed.data, messageBytes };
}

/** fsync of the directory, when this user may open it (a directory without read permission cannot be). */
async function syncDirectoryIfAllowed(directory: string): Promise<void> {
  await fsyncDirectory(directory).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EACCES' && error.code !== 'EPERM') throw error;
  });
}
