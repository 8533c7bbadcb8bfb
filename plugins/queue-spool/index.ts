import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Clock, inject, injectable, type Lease, type Logger, type NewMessage, type Paths, PetrelError, PidLock, type PluginMeta, type Queue, type QueuedMessage, type QueueFilter, type QueueState, type SettleRequest, type Spool, TOKENS, z } from 'petrel';
import { applyOutcomes, countByState, matchesFilter, MinHeap, WriteHealth } from 'petrel/queue';
import { SpoolFiles, type StoredMessage } from './spool-files.js';

export const options = z.strictObject({
  directory: z.string().min(1).default('queue').describe('where the queue lives, relative to server.dataDir'),
});

type Options = z.output<typeof options>;

interface Entry {
  record: StoredMessage;
  leaseToken?: string;
  leaseDeadline: number;
  /** Bumped on every change, so stale heap entries are recognised and skipped. */
  version: number;
  /** The last write of this message's files: the next one waits for it (see #serially). */
  writing: Promise<unknown>;
}

interface DueItem {
  readonly id: string;
  readonly due: number;
  readonly version: number;
}

/**
 * The embedded queue: files on local disk, made durable the way Postfix does
 * it (write, fsync, rename, fsync the directory) before the client gets its
 * 250. One process owns the directory (a pid lock); a second one refuses to
 * start. On start it recovers what a crash left: every record becomes due,
 * leases that were held are simply gone, and half-written files are removed.
 */
@injectable()
export default class SpoolQueue implements Queue {
  static readonly meta: PluginMeta = {
    name: 'queue-spool',
    version: '1.0.0',
    description: 'durable queue in local files (write + fsync + rename + directory fsync)',
    provides: ['queue'],
  };
  static readonly options = options;

  readonly #files: SpoolFiles;
  readonly #lock: PidLock;
  readonly #entries = new Map<string, Entry>();
  readonly #due = new MinHeap<DueItem>((item) => item.due);
  readonly #listeners = new Set<() => void>();
  /** Whether the queue's files can be written (behind ready()). */
  readonly #writes: WriteHealth;
  #started = false;

  constructor(
    @inject(TOKENS.PluginOptions) opts: Options,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Spool) private readonly spool: Spool,
  ) {
    const directory = join(paths.dataDir, opts.directory);
    this.#files = new SpoolFiles(directory);
    this.#writes = new WriteHealth(this.#files.tmp, (failure) => {
      if (failure) {
        this.log.error({ err: failure, directory, code: 'PETREL_QUEUE_UNAVAILABLE' }, `the queue cannot write: ${failure.message}; /ready is false until it can`);
      } else {
        this.log.info({ directory }, 'the queue can write again');
      }
    });
    this.#lock = new PidLock(join(directory, 'lock'));
  }

  async start(): Promise<void> {
    await this.#files.prepare();
    if (!(await this.#lock.acquire())) {
      const owner = await this.#lock.owner();
      throw new PetrelError('PETREL_QUEUE_LOCKED', `queue directory ${this.#files.directory} is in use by process ${owner}; stop it first`);
    }
    const records = await this.#files.recover((id, error) =>
      this.log.error({ qid: id, err: error }, `queue record ${id} is unreadable; moved to corrupt/`),
    );
    for (const record of records) this.#track(record);
    this.#started = true;
    this.log.info({ messages: records.length, directory: this.#files.directory }, 'queue recovered');
  }

  async close(): Promise<void> {
    this.#started = false;
    await this.#files.close();
    await this.#lock.release();
  }

  async enqueue(message: NewMessage): Promise<void> {
    const record: StoredMessage = {
      format: 1,
      id: message.id,
      envelope: message.envelope,
      recipients: message.recipients.map((r) => ({ ...r, status: 'pending', attempts: 0 })),
      origin: message.origin,
      size: message.file.size,
      receivedAt: message.receivedAt,
      nextAttemptAt: message.receivedAt,
      attempts: 0,
      held: false,
      messageId: message.messageId,
      headerBlock: message.headerBlock.toString('base64'),
      bodyOffset: message.file.bodyOffset,
    };
    const handle = await this.spool.takeHandle(message.file.path);
    await this.#writes.track(() => this.#files.store(message, record, handle));
    this.#track(record);
    this.#notifyDue();
  }

  async lease(limit: number, leaseMs: number): Promise<Lease[]> {
    const now = this.clock.now();
    const leases: Lease[] = [];
    while (leases.length < limit) {
      const top = this.#due.peek();
      if (!top || top.due > now) break;
      this.#due.pop();
      const entry = this.#entries.get(top.id);
      if (!entry || entry.version !== top.version || entry.record.held) continue;
      if (entry.leaseToken !== undefined && entry.leaseDeadline > now) continue;
      entry.leaseToken = randomUUID();
      entry.leaseDeadline = now + leaseMs;
      entry.version++;
      // If the holder never settles, the message comes due again at the deadline.
      this.#due.push({ id: top.id, due: entry.leaseDeadline, version: entry.version });
      leases.push({ message: publicView(entry.record), token: entry.leaseToken, deadline: entry.leaseDeadline });
    }
    return leases;
  }

  async claim(id: string, leaseMs: number): Promise<Lease | undefined> {
    const entry = this.#entries.get(id);
    const now = this.clock.now();
    if (!entry || (entry.leaseToken !== undefined && entry.leaseDeadline > now)) return undefined;
    entry.leaseToken = randomUUID();
    entry.leaseDeadline = now + leaseMs;
    entry.version++;
    if (!entry.record.held) this.#due.push({ id, due: entry.leaseDeadline, version: entry.version });
    return { message: publicView(entry.record), token: entry.leaseToken, deadline: entry.leaseDeadline };
  }

  async nextDueAt(): Promise<number | undefined> {
    // Stale heap entries (superseded versions, removed or held messages) are dropped on the way.
    for (let top = this.#due.peek(); top !== undefined; top = this.#due.peek()) {
      const entry = this.#entries.get(top.id);
      if (entry && entry.version === top.version && !entry.record.held) return top.due;
      this.#due.pop();
    }
    return undefined;
  }

  async read(id: string): Promise<Readable> {
    const record = this.#entries.get(id)?.record ?? (await this.#files.read(id));
    if (!record) throw new Error(`message ${id} is not in the queue`);
    return this.#files.content(record);
  }

  async settle(lease: Lease, request: SettleRequest): Promise<boolean> {
    const entry = this.#entries.get(lease.message.id);
    if (!entry) return false;
    return this.#serially(entry, async () => {
      if (entry.leaseToken !== lease.token || this.#entries.get(lease.message.id) !== entry) return false;
      const now = this.clock.now();
      const { recipients, open } = applyOutcomes(entry.record.recipients, request.outcomes, now);
      const before = entry.record;
      // Out of reach of lease() while the files change: no heap item matches the new version yet.
      entry.leaseToken = undefined;
      entry.version++;
      try {
        if (!open) {
          this.#entries.delete(before.id);
          await this.#writes.track(() => this.#files.remove(before.id));
          return true;
        }
        entry.record = { ...before, recipients, attempts: before.attempts + 1, nextAttemptAt: request.nextAttemptAt ?? now };
        await this.#writes.track(() => this.#files.write(entry.record));
      } catch (error) {
        // Nothing was recorded: the lease is the caller's again, to settle once the disk takes it
        // (or, if the caller gives up, the message is due at the lease's deadline).
        this.#entries.set(before.id, entry);
        entry.record = before;
        entry.leaseToken = lease.token;
        entry.version++;
        this.#due.push({ id: before.id, due: entry.leaseDeadline, version: entry.version });
        throw error;
      }
      this.#schedule(entry);
      return true;
    });
  }

  async abandon(lease: Lease, dueAt?: number): Promise<void> {
    const entry = this.#entries.get(lease.message.id);
    if (!entry || entry.leaseToken !== lease.token) return;
    const now = this.clock.now();
    const due = dueAt === undefined ? now : Math.max(now, dueAt);
    entry.leaseToken = undefined;
    entry.version++;
    // In memory only: a postponement is not worth a disk write; after a restart the message is simply due.
    if (due !== entry.record.nextAttemptAt) entry.record = { ...entry.record, nextAttemptAt: due };
    this.#due.push({ id: entry.record.id, due, version: entry.version });
    if (due <= now) this.#notifyDue();
  }

  onDue(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async list(filter: QueueFilter = {}): Promise<QueuedMessage[]> {
    const records = this.#started ? [...this.#entries.values()].map((e) => e.record) : await this.#files.scan();
    const now = this.clock.now();
    const matches = records
      .filter((record) => matchesFilter(record, filter, now))
      .sort((a, b) => a.receivedAt - b.receivedAt)
      .map(publicView);
    return filter.limit === undefined ? matches : matches.slice(0, filter.limit);
  }

  async inspect(id: string): Promise<QueuedMessage | undefined> {
    const record = this.#entries.get(id)?.record ?? (await this.#files.read(id));
    return record ? publicView(record) : undefined;
  }

  async retry(id: string): Promise<boolean> {
    return this.#update(id, (record) => ({ ...record, nextAttemptAt: this.clock.now() }));
  }

  async hold(id: string): Promise<boolean> {
    return this.#update(id, (record) => ({ ...record, held: true }));
  }

  async release(id: string): Promise<boolean> {
    return this.#update(id, (record) => ({ ...record, held: false, nextAttemptAt: this.clock.now() }));
  }

  async remove(id: string): Promise<boolean> {
    const entry = this.#entries.get(id);
    if (!entry) {
      if (!(await this.#files.read(id))) return false;
      await this.#writes.track(() => this.#files.remove(id));
      return true;
    }
    return this.#serially(entry, async () => {
      if (this.#entries.get(id) !== entry) return false;
      await this.#writes.track(() => this.#files.remove(id));
      this.#entries.delete(id);
      entry.version++;
      return true;
    });
  }

  async stats(): Promise<Record<QueueState, number>> {
    return countByState(await this.list());
  }

  /** Resolves while the queue can write; after a failed write, only once a write of its own works (WriteHealth). */
  ready(): Promise<void> {
    return this.#writes.check();
  }

  async #update(id: string, change: (record: StoredMessage) => StoredMessage): Promise<boolean> {
    const entry = this.#entries.get(id);
    if (!entry) {
      const record = await this.#files.read(id);
      if (!record) return false;
      await this.#writes.track(() => this.#files.write(change(record)));
      return true;
    }
    return this.#serially(entry, async () => {
      if (this.#entries.get(id) !== entry) return false;
      const updated = change(entry.record);
      await this.#writes.track(() => this.#files.write(updated));
      entry.record = updated;
      entry.version++;
      this.#schedule(entry);
      return true;
    });
  }

  /**
   * Changes of one message's files one at a time, each starting from what
   * the one before left (an operator's hold while a delivery settles must
   * not be overwritten, and two writers must not share a temp file).
   */
  #serially<T>(entry: Entry, change: () => Promise<T>): Promise<T> {
    const result = entry.writing.then(change, change);
    entry.writing = result.catch(() => undefined);
    return result;
  }


  #track(record: StoredMessage): void {
    const entry: Entry = { record, leaseDeadline: 0, version: 0, writing: Promise.resolve() };
    this.#entries.set(record.id, entry);
    this.#schedule(entry);
  }

  #schedule(entry: Entry): void {
    if (entry.record.held) return;
    this.#due.push({ id: entry.record.id, due: entry.record.nextAttemptAt, version: entry.version });
    if (entry.record.nextAttemptAt <= this.clock.now()) this.#notifyDue();
  }

  #notifyDue(): void {
    for (const listener of this.#listeners) listener();
  }
}

/** The record without the storage details (header bytes, offsets). */
function publicView(record: StoredMessage): QueuedMessage {
  const { format: _format, headerBlock: _headers, bodyOffset: _offset, ...message } = record;
  return message;
}
