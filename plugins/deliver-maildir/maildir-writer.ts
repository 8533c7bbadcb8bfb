import { mkdir, open, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DirectorySyncer } from 'petrel';

export interface MaildirWriterSettings {
  /** Create missing maildirs (and folders); off, a missing one is an unknown mailbox. */
  readonly create: boolean;
  /** `crlf` keeps the bytes as received; `lf` writes Unix line ends (what some maildir tools expect). */
  readonly lineEndings: 'crlf' | 'lf';
  readonly fileMode: number;
}

/**
 * This host's name as it appears in maildir file names (`/` and `:` would
 * break them; Dovecot writes them as `\057` and `\072`).
 */
export function maildirHostName(): string {
  return hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/**
 * The tmp/ files this process is writing right now, across every writer
 * (a reload runs two generations of the plugin side by side), so that a
 * sweep of stale files (stale-tmp.ts) never takes one of ours.
 */
export const FILES_BEING_WRITTEN = new Set<string>();

/** The mailbox does not exist and may not be created. */
export class NoSuchMailbox extends Error {
  constructor(readonly directory: string) {
    super(`no maildir at ${directory}`);
    this.name = 'NoSuchMailbox';
  }
}

/**
 * Writes messages into maildirs the way the maildir specification and
 * Dovecot do it: into `tmp/` under a name no other writer can pick, fsync,
 * rename into `new/`, fsync `new/` — only then is the message delivered, so
 * a crash leaves either nothing in `new/` or the whole message. Names are
 * `<seconds>.M<microseconds>P<pid>Q<counter>.<host>,S=<size>` (Dovecot's
 * form; `S=` lets quota tools skip a stat).
 */
export class MaildirWriter {
  readonly #host = maildirHostName();
  readonly #syncers = new Map<string, DirectorySyncer>();
  readonly #ready = new Set<string>();
  #counter = 0;

  constructor(private readonly settings: MaildirWriterSettings) {}

  /**
   * Stores `header` followed by `body` in the maildir at `directory`
   * (optionally in a Maildir++ `folder` inside it). Resolves with the path
   * in `new/`; rejects with NoSuchMailbox or the file system's error.
   */
  async deliver(directory: string, folder: string | undefined, header: string, body: Readable): Promise<string> {
    const maildir = await this.#prepare(directory, folder);
    const unique = this.#uniqueName();
    const tmpPath = join(maildir, 'tmp', unique);
    FILES_BEING_WRITTEN.add(tmpPath);
    try {
      return await this.#write(maildir, unique, tmpPath, header, body);
    } finally {
      FILES_BEING_WRITTEN.delete(tmpPath);
    }
  }

  /** tmp/ → fsync → rename into new/ → fsync new/; a failure removes what it wrote. */
  async #write(maildir: string, unique: string, tmpPath: string, header: string, body: Readable): Promise<string> {
    const handle = await open(tmpPath, 'wx', this.settings.fileMode);
    let size = 0;
    const lf = this.settings.lineEndings === 'lf' ? new CrlfToLf() : undefined;
    const write = async (bytes: Buffer) => {
      size += bytes.length;
      await handle.write(bytes);
    };
    try {
      for await (const chunk of prepend(header, body)) await write(lf ? lf.convert(chunk) : chunk);
      if (lf) await write(lf.end());
      await handle.datasync();
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
      // The maildir may have been removed under us: look again next time.
      this.#ready.delete(maildir);
      throw error;
    }
    const finalPath = join(maildir, 'new', `${unique},S=${size}`);
    try {
      await rename(tmpPath, finalPath);
    } catch (error) {
      await unlink(tmpPath).catch(() => undefined);
      throw error;
    }
    await this.#syncer(join(maildir, 'new')).sync();
    return finalPath;
  }

  async #prepare(directory: string, folder: string | undefined): Promise<string> {
    const maildir = folder ? join(directory, folder) : directory;
    if (this.#ready.has(maildir)) return maildir;
    const exists = await stat(join(directory, 'new')).then(
      (info) => info.isDirectory(),
      () => false,
    );
    if (!exists && !this.settings.create) throw new NoSuchMailbox(directory);
    for (const dir of [directory, maildir]) {
      for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
    }
    // Maildir++ marks a folder with an empty `maildirfolder` file (Dovecot, Courier).
    if (folder) await writeFile(join(maildir, 'maildirfolder'), '', { flag: 'a', mode: this.settings.fileMode });
    this.#ready.add(maildir);
    return maildir;
  }

  #uniqueName(): string {
    const now = process.hrtime.bigint();
    const seconds = Math.floor(Date.now() / 1000);
    const micros = Number((now / 1000n) % 1_000_000n);
    this.#counter = (this.#counter + 1) % 1_000_000_000;
    return `${seconds}.M${micros}P${process.pid}Q${this.#counter}.${this.#host}`;
  }

  #syncer(directory: string): DirectorySyncer {
    let syncer = this.#syncers.get(directory);
    if (!syncer) {
      syncer = new DirectorySyncer(directory);
      this.#syncers.set(directory, syncer);
    }
    return syncer;
  }
}

async function* prepend(header: string, body: Readable): AsyncGenerator<Buffer> {
  yield Buffer.from(header);
  for await (const chunk of body) yield chunk as Buffer;
}

/** CRLF → LF across chunks: a CR at the end of one chunk waits to see whether an LF follows. */
class CrlfToLf {
  #pendingCr = false;

  convert(chunk: Buffer): Buffer {
    let text = (this.#pendingCr ? '\r' : '') + chunk.toString('latin1');
    this.#pendingCr = text.endsWith('\r');
    if (this.#pendingCr) text = text.slice(0, -1);
    return Buffer.from(text.replace(/\r\n/g, '\n'), 'latin1');
  }

  end(): Buffer {
    const rest = this.#pendingCr ? Buffer.from('\r') : Buffer.alloc(0);
    this.#pendingCr = false;
    return rest;
  }
}
