import { constants, watch, type FSWatcher } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { PetrelConfig } from '../config/schema.js';
import type { Bouncer } from '../delivery/bouncer.js';
import type { DeliveryReply } from '../delivery/outbound.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { userNameOf } from '../privileges/system-accounts.js';
import type { NewMessage, Queue, QueuedEnvelope, QueuedMessage } from '../queue/contract.js';
import { isQueueId } from '../queue/queue-id.js';
import { localReceivedHeader } from '../smtp/received-header.js';
import type { IncomingMessage } from '../spool/incoming-message.js';
import type { Spool } from '../spool/spool.js';
import { DirectorySyncer } from '../util/durable-fs.js';
import { CORRUPT, ensureMaildrop, isComplete, readEnvelope, type MaildropEnvelope } from './maildrop.js';

/** A look at the maildrop this often whatever happens (a missed event, a message that failed to queue). */
const RESCAN_MS = 30_000;
/** An unfinished file this old was left by a sendmail that died (maildir's rule for tmp/). */
const STALE_MS = 36 * 60 * 60 * 1000;
/** Bytes of a refused message read for the header block its sender gets back. */
const RETURNED_HEADER_BYTES = 64 * 1024;

export interface PickupDeps {
  readonly dataDir: string;
  readonly spool: Spool;
  readonly queue: () => Queue;
  /** The configuration in force (server.hostname, limits). */
  readonly config: () => PetrelConfig;
  readonly clock: Clock;
  readonly metrics?: Metrics;
  /** Tells the sender of a message that cannot be queued (a DSN, like any other). */
  readonly bouncer?: () => Bouncer;
  readonly log: Logger;
}

/**
 * Moves what `petrel sendmail` left in the maildrop into the queue (Postfix's
 * pickup): at start, whenever the directory changes, and every 30 seconds.
 *
 * A message from a local program is trusted like Postfix trusts its sendmail
 * command: it does not go through the SMTP session's hooks (connect … rcpt:
 * relay, DNSBL, sender ownership are about strangers on the network); it is
 * queued as sent by the local user who owns the file (origin: listener
 * `sendmail`, `user` that login), and the outbound hooks (route, transform,
 * deliver) treat it like any other message. A file is removed only once the
 * queue has it; a crash in between finds it queued already (its name is its
 * queue id) and only removes the file. A file that is not a message (or is no
 * longer acceptable: larger than limits.messageSize now) is moved to
 * `maildrop/corrupt/` with an error in the log, never deleted unread; when
 * its envelope could be read, its sender gets a delivery status
 * notification saying why (sendmail said 0: this is the only word they get).
 */
export class MaildropPickup {
  #directory = '';
  #syncer: DirectorySyncer | undefined;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #names = new Map<number, string>();

  constructor(private readonly deps: PickupDeps) {}

  get directory(): string {
    return this.#directory;
  }

  /**
   * Makes the directory and watches it; what is there already (mail sent
   * while the server was stopped) is picked up in the background. Petrel
   * serves no connection until this returns, and a backlog, or a queue slow
   * to take it, must not keep the listeners closed meanwhile.
   */
  async start(): Promise<void> {
    this.#directory = await ensureMaildrop(this.deps.dataDir);
    this.#syncer = new DirectorySyncer(this.#directory);
    this.#watcher = watch(this.#directory, () => void this.#trigger());
    this.#watcher.on('error', (error) => this.deps.log.warn({ err: error }, `cannot watch ${this.#directory}; looking every ${RESCAN_MS / 1000} s`));
    this.#timer = setInterval(() => void this.#trigger(), RESCAN_MS);
    this.#timer.unref();
    void this.#trigger();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#timer);
    await this.#scanning;
    await this.#syncer?.close();
  }

  /** One scan at a time; a change during a scan makes it look again. */
  #trigger(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = this.#scan()
      .catch((error: unknown) => this.deps.log.error({ err: error }, `cannot look into ${this.#directory}: ${(error as Error).message}; looking again in ${RESCAN_MS / 1000} s`))
      .finally(() => {
        this.#scanning = undefined;
      });
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    do {
      this.#again = false;
      for (const name of (await readdir(this.#directory)).sort()) {
        if (this.#closed) return;
        if (name === CORRUPT) continue;
        await this.#pickUp(name).catch((error: unknown) =>
          this.deps.log.error({ err: error, qid: name, code: 'PETREL_QUEUE_UNAVAILABLE' }, `cannot queue ${join(this.#directory, name)} yet: ${(error as Error).message}; it stays in the maildrop and is tried again`),
        );
      }
    } while (this.#again && !this.#closed);
  }

  async #pickUp(name: string): Promise<void> {
    const path = join(this.#directory, name);
    if (!isQueueId(name)) return this.#setAside(path, 'not a maildrop file name');
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a link planted in the maildrop must not make the server read a file of its own.
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ELOOP') return this.#setAside(path, 'a symbolic link');
      // Mode 0600 while sendmail writes it: not ours to read yet.
      if (code === 'EACCES') {
        const stats = await lstat(path).catch(() => undefined);
        return stats && this.#removeIfStale(path, stats.mtimeMs);
      }
      throw error;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile() || stats.nlink !== 1) return await this.#setAside(path, 'not a regular file with a single link');
      if (!isComplete(stats.mode)) return await this.#removeIfStale(path, stats.mtimeMs);
      let envelope: MaildropEnvelope;
      let messageBytes: number;
      try {
        ({ envelope, messageBytes } = await readEnvelope(handle, stats.size));
      } catch (error) {
        return await this.#setAside(path, (error as Error).message);
      }
      if (await this.deps.queue().inspect(name)) {
        this.deps.log.info({ qid: name }, 'maildrop file already queued (a restart came between queueing and removing it); removing it');
      } else {
        try {
          await this.#enqueue(name, handle, envelope, messageBytes, stats.uid);
        } catch (error) {
          if (!(error instanceof SetAside)) throw error;
          await this.#setAside(path, error.message);
          return await this.#returnToSender(name, handle, envelope, messageBytes, stats.uid, error.reply);
        }
      }
      await unlink(path);
      await this.#syncer?.sync();
    } finally {
      await handle.close();
    }
  }

  async #enqueue(id: string, handle: FileHandle, envelope: MaildropEnvelope, messageBytes: number, uid: number): Promise<void> {
    const { server, limits } = this.deps.config();
    const log = this.deps.log.child({ qid: id });
    const refusals: Record<'oversize' | 'header-too-large' | 'bare-line-ending', DeliveryReply> = {
      oversize: { code: 552, enhanced: '5.3.4', text: `message larger than limits.messageSize (${limits.messageSize} bytes)` },
      'header-too-large': { code: 552, enhanced: '5.3.4', text: `header block larger than limits.headerSize (${limits.headerSize} bytes)` },
      'bare-line-ending': { code: 554, enhanced: '5.6.0', text: 'message contains bare CR or LF line endings' },
    };
    // Not even copied to the spool: anyone may put a file of any size into the maildrop.
    if (messageBytes > limits.messageSize) throw new SetAside(`larger than limits.messageSize (${messageBytes} bytes)`, refusals.oversize);
    const data = handle.createReadStream({ start: 0, end: messageBytes - 1, autoClose: false });
    const outcome = await this.deps.spool.receive(id, data, { maxBytes: limits.messageSize, maxHeaderBytes: limits.headerSize });
    if (outcome.kind !== 'received') throw new SetAside(`refused by the spool (${outcome.kind}, ${outcome.bytes} bytes)`, refusals[outcome.kind]);
    const message = outcome.message;
    const user = await this.#userName(uid);
    try {
      message.headers.prepend('Received', localReceivedHeader({ byHost: server.hostname, uid, queueId: id, recipients: envelope.to, date: new Date(this.deps.clock.now()) }));
      await this.deps.queue().enqueue(newMessage(id, envelope, message, user, this.deps.clock.now()));
    } finally {
      await this.deps.spool.discard(message.file.path);
    }
    this.deps.metrics?.messages.inc({ listener: 'sendmail', result: 'accepted' });
    this.deps.metrics?.bytes.inc({ listener: 'sendmail' }, message.size);
    log.info(
      { listener: 'sendmail', result: 'queued', user, uid, from: envelope.from, to: envelope.to, size: message.size, msgid: message.headers.getFirst('message-id') },
      'message accepted',
    );
  }

  /**
   * The failure notice for a message set aside after its envelope was read,
   * with the message's header block. It goes to the envelope sender (a null
   * sender's to the postmaster, as for any bounce) and honours NOTIFY; a
   * notice that cannot be queued is logged, never retried.
   */
  async #returnToSender(id: string, handle: FileHandle, envelope: MaildropEnvelope, messageBytes: number, uid: number, reply: DeliveryReply): Promise<void> {
    if (!this.deps.bouncer) return;
    try {
      const head = Buffer.alloc(Math.min(messageBytes, RETURNED_HEADER_BYTES));
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      const read = head.subarray(0, bytesRead);
      const end = read.indexOf('\r\n\r\n');
      const headers = end >= 0 ? read.subarray(0, end + 4) : Buffer.concat([read.subarray(0, read.lastIndexOf('\n') + 1), Buffer.from('\r\n')]);
      const now = this.deps.clock.now();
      const message: QueuedMessage = {
        id,
        envelope: queuedEnvelope(envelope),
        recipients: envelope.to.map((address) => ({ address, notify: envelope.notify, status: 'bounced', attempts: 0 })),
        origin: { remoteAddress: '127.0.0.1', user: await this.#userName(uid), listener: 'sendmail' },
        size: messageBytes,
        receivedAt: now,
        nextAttemptAt: now,
        attempts: 0,
        held: false,
      };
      await this.deps.bouncer().report(
        message,
        envelope.to.map((address) => ({ address, action: 'failed' as const, reply, lastAttemptAt: now })),
        headers,
      );
    } catch (error) {
      this.deps.log.error({ err: error, qid: id, from: envelope.from }, `cannot tell the sender of maildrop file ${id} that it was set aside: ${(error as Error).message}`);
    }
  }

  async #setAside(path: string, reason: string): Promise<void> {
    const name = path.slice(this.#directory.length + 1);
    await rename(path, join(await this.#corruptDirectory(), name));
    this.deps.log.error({ file: path, reason }, `maildrop file ${name} is not a message Petrel can queue (${reason}); moved to maildrop/corrupt/`);
  }

  /**
   * maildrop/corrupt/, made again when it is missing (an operator cleaned
   * up), and only if it is the server's own directory. Anyone may add to the
   * maildrop: a `corrupt` someone else made there first, or a link named so,
   * would take the files set aside wherever they like, into the data
   * directory itself (a file named `users` over auth-file's). Once the
   * server's, the sticky maildrop keeps others from replacing it.
   */
  async #corruptDirectory(): Promise<string> {
    const path = join(this.#directory, CORRUPT);
    await mkdir(path, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    const stats = await lstat(path);
    const uid = process.geteuid?.();
    if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid)) {
      throw new Error(
        `${path} is not the server's own directory (${stats.isSymbolicLink() ? 'a symbolic link' : `owned by uid ${stats.uid}`}), ` +
          'so nothing is set aside into it: remove it (the server makes it again)',
      );
    }
    return path;
  }

  async #removeIfStale(path: string, modifiedAt: number): Promise<void> {
    if (this.deps.clock.now() - modifiedAt < STALE_MS) return;
    await unlink(path);
    this.deps.log.warn({ file: path }, 'removed an unfinished maildrop file more than 36 hours old (a sendmail that died while writing it)');
  }

  /** The login of a uid (cached; a uid without an account is named by its number). */
  async #userName(uid: number): Promise<string> {
    let name = this.#names.get(uid);
    if (name === undefined) {
      name = (await userNameOf(uid)) ?? String(uid);
      this.#names.set(uid, name);
    }
    return name;
  }
}

/** A message that cannot be queued as it is: set aside rather than tried again forever, and the reply its sender is told. */
class SetAside extends Error {
  constructor(
    message: string,
    readonly reply: DeliveryReply,
  ) {
    super(message);
  }
}

function newMessage(id: string, envelope: MaildropEnvelope, message: IncomingMessage, user: string, now: number): NewMessage {
  return {
    id,
    envelope: queuedEnvelope(envelope),
    recipients: envelope.to.map((address) => ({ address, notify: envelope.notify })),
    origin: { remoteAddress: '127.0.0.1', user, listener: 'sendmail' },
    receivedAt: now,
    headerBlock: message.headers.toBuffer(),
    file: message.file,
    messageId: message.headers.getFirst('message-id'),
  };
}

function queuedEnvelope(envelope: MaildropEnvelope): QueuedEnvelope {
  return {
    from: envelope.from,
    dsn: envelope.ret || envelope.envid ? { ret: envelope.ret, envid: envelope.envid } : undefined,
    smtpUtf8: envelope.smtpUtf8,
    bodyType: envelope.bodyType,
    requireTls: false,
  };
}
