import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Clock, inject, injectable, type Lease, type Logger, type NewMessage, type Paths, PetrelError, PidLock, type PluginMeta, type Queue, type QueueCounts, type QueuedMessage, type QueueFilter, type QueueState, type SettleRequest, type Spool, stateOf, TOKENS, z } from 'petrel';
import { applyOutcomes, compareListOrder, countByState, countMessages, DomainLists, listEntries, matchesFilter, QueueCounter, WriteHealth } from 'petrel/queue';
import { DueWindow, type DueItem } from './due-window.js';
import { RecentRecords } from './recent-records.js';
import { SpoolFiles, type StoredMessage } from './spool-files.js';

export const options = z.strictObject({
  directory: z.string().min(1).default('queue').describe('where the queue lives, relative to server.dataDir'),
});

type Options = z.output<typeof options>;

/** Due within this, a message is in the heap of what is due next (see DueWindow). */
const ACTIVE_WINDOW_MS = 10 * 60_000;

/** Full records kept in memory (see RecentRecords): a few MB; the rest are read from their files. */
const RECENT_RECORDS = 2_000;

/** The leaseToken of an entry whose settle is writing: no one holds it, no one may lease it. */
const SETTLING = '';

/**
 * What the queue keeps in memory for each message: what scheduling, the
 * counters and the listing order need, and nothing else (about 200 bytes
 * with its id and Map entry; see docs/performance.md). The envelope,
 * recipients and header block stay in the message's files (and, for recent
 * messages, in RecentRecords).
 */
class Entry {
  nextAttemptAt: number;
  attempts: number;
  held: boolean;
  /** Whether the message has a .state file (it changed since it was accepted). */
  hasState: boolean;
  /** The domain of each open recipient (interned, so most entries share one array). */
  open: readonly string[];
  leaseToken: string | undefined = undefined;
  leaseDeadline = 0;
  /** Bumped on every change, so stale heap entries are recognised and skipped. */
  version = 0;
  /** The last write of this message's files: the next one waits for it (see #serially). */
  writing: Promise<unknown> | undefined = undefined;

  constructor(
    readonly id: string,
    readonly receivedAt: number,
    record: StoredMessage,
    hasState: boolean,
    open: readonly string[],
  ) {
    this.nextAttemptAt = record.nextAttemptAt;
    this.attempts = record.attempts;
    this.held = record.held;
    this.hasState = hasState;
    this.open = open;
  }
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
  readonly #due = new DueWindow(ACTIVE_WINDOW_MS, (add) => this.#scanDue(add), (item) => this.#isCurrent(item));
  readonly #records = new RecentRecords(RECENT_RECORDS);
  readonly #counter = new QueueCounter();
  readonly #domainLists = new DomainLists();
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
    // Each worker process of server.workers has its own directory (Paths.partition).
    const directory = paths.partition(opts.directory);
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
    const recovered = await this.#files.recover(
      (record, hasState) => this.#track(record, hasState),
      (id, error) => this.log.error({ qid: id, err: error }, `queue record ${id} is unreadable; moved to corrupt/`),
    );
    this.#started = true;
    this.log.info({ messages: recovered, directory: this.#files.directory }, 'queue recovered');
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
    this.#records.set(record);
    this.#track(record, false);
    this.#notifyDue();
  }

  async lease(limit: number, leaseMs: number): Promise<Lease[]> {
    const now = this.clock.now();
    const taken: Entry[] = [];
    // Taken at once (no await in between), so concurrent callers never get the same message.
    while (taken.length < limit) {
      const top = this.#due.peekDue(now);
      if (!top) break;
      this.#due.pop();
      const entry = this.#entries.get(top.id) as Entry;
      if (entry.leaseToken !== undefined && entry.leaseDeadline > now) continue;
      this.#takeLease(entry, now + leaseMs);
      taken.push(entry);
    }
    const leases = await Promise.all(taken.map((entry) => this.#leaseOf(entry)));
    return leases.filter((lease) => lease !== undefined);
  }

  async claim(id: string, leaseMs: number): Promise<Lease | undefined> {
    const entry = this.#entries.get(id);
    const now = this.clock.now();
    if (!entry || (entry.leaseToken !== undefined && entry.leaseDeadline > now)) return undefined;
    this.#takeLease(entry, now + leaseMs);
    return this.#leaseOf(entry);
  }

  #takeLease(entry: Entry, deadline: number): void {
    entry.leaseToken = randomUUID();
    entry.leaseDeadline = deadline;
    entry.version++;
    // If the holder never settles, the message comes due again at the deadline.
    if (!entry.held) this.#due.add(entry.id, deadline, entry.version);
  }

  /** The lease on an entry just taken, with its record (from memory or its file); undefined if the message is gone. */
  async #leaseOf(entry: Entry): Promise<Lease | undefined> {
    const token = entry.leaseToken as string;
    let record: StoredMessage | undefined;
    try {
      record = await this.#load(entry);
    } catch (error) {
      // Unreadable now (it may have been removed meanwhile): the lease runs out, and a later lease tries again.
      if (this.#entries.get(entry.id) === entry) this.log.warn({ qid: entry.id, err: error }, `queue record ${entry.id} could not be read for delivery`);
      return undefined;
    }
    return { message: publicView(record), token, deadline: entry.leaseDeadline };
  }

  async nextDueAt(): Promise<number | undefined> {
    return this.#due.nextDueAt(this.clock.now());
  }

  async read(id: string): Promise<Readable> {
    const entry = this.#entries.get(id);
    const record = entry ? await this.#load(entry) : await this.#files.read(id);
    if (!record) throw new Error(`message ${id} is not in the queue`);
    return this.#files.content(record);
  }

  async settle(lease: Lease, request: SettleRequest): Promise<boolean> {
    const entry = this.#entries.get(lease.message.id);
    if (!entry) return false;
    return this.#serially(entry, async () => {
      if (entry.leaseToken !== lease.token || this.#entries.get(lease.message.id) !== entry) return false;
      const now = this.clock.now();
      const before = await this.#load(entry);
      const { recipients, open } = applyOutcomes(before.recipients, request.outcomes, now);
      // Out of reach of lease() while the files change: no heap item matches the new version,
      // and a refill of the due window skips a settling entry.
      entry.leaseToken = SETTLING;
      entry.version++;
      try {
        if (!open) {
          this.#entries.delete(before.id);
          this.#records.delete(before.id);
          this.#count(entry, -1);
          await this.#writes.track(() => this.#files.remove(before.id, entry.hasState));
          return true;
        }
        const after: StoredMessage = { ...before, recipients, attempts: before.attempts + 1, nextAttemptAt: request.nextAttemptAt ?? now };
        // Listed and shown from now on, while it is being written (as queue-spool always did); undone if the write fails.
        this.#records.set(after);
        await this.#writes.track(() => this.#files.write(after));
        this.#change(entry, after);
      } catch (error) {
        this.#records.set(before);
        // Nothing was recorded: the lease is the caller's again, to settle once the disk takes it
        // (or, if the caller gives up, the message is due at the lease's deadline).
        if (this.#entries.get(before.id) !== entry) {
          this.#entries.set(before.id, entry);
          this.#count(entry, 1);
        }
        entry.leaseToken = lease.token;
        entry.version++;
        this.#due.add(before.id, entry.leaseDeadline, entry.version);
        throw error;
      }
      entry.leaseToken = undefined;
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
    entry.nextAttemptAt = due;
    if (!entry.held) this.#due.add(entry.id, due, entry.version);
    if (due <= now) this.#notifyDue();
  }

  onDue(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** In listing order, a page read from the compact entries (see listEntries); a queue not started scans its files. */
  async list(filter: QueueFilter = {}): Promise<QueuedMessage[]> {
    const now = this.clock.now();
    if (!this.#started) return listRecords(await this.#files.scan(), filter, now);
    // A message removed meanwhile is simply not listed.
    return listEntries(() => this.#entries.values(), filter, now, (entry) => this.#load(entry).then(publicView, () => undefined));
  }

  async inspect(id: string): Promise<QueuedMessage | undefined> {
    const entry = this.#entries.get(id);
    const record = entry ? await this.#load(entry).catch(() => undefined) : await this.#files.read(id);
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
      await this.#writes.track(() => this.#files.remove(id, entry.hasState));
      this.#entries.delete(id);
      this.#records.delete(id);
      this.#count(entry, -1);
      entry.version++;
      return true;
    });
  }

  async stats(): Promise<Record<QueueState, number>> {
    return this.#started ? this.#counter.counts().states : countByState(await this.list());
  }

  /** From counters kept on every change (see QueueCounter); a queue not started counts its files. */
  async counts(): Promise<QueueCounts> {
    return this.#started ? this.#counter.counts() : countMessages(await this.list());
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
      const updated = change(await this.#load(entry));
      await this.#writes.track(() => this.#files.write(updated));
      this.#change(entry, updated);
      this.#schedule(entry);
      return true;
    });
  }

  /** The message's full record as it is now: from memory when recent, else from its files. */
  async #load(entry: Entry): Promise<StoredMessage> {
    const record = this.#records.get(entry.id) ?? (await this.#files.read(entry.id, entry.hasState));
    if (!record) throw new Error(`message ${entry.id} is not in the queue`);
    this.#records.set(record);
    // A postponement (abandon) is kept in memory only: the entry knows the due time, the file may not.
    return record.nextAttemptAt === entry.nextAttemptAt ? record : { ...record, nextAttemptAt: entry.nextAttemptAt };
  }

  /** Records a write of the message's state: the entry, its counters and the recent record follow it. */
  #change(entry: Entry, record: StoredMessage): void {
    this.#count(entry, -1);
    entry.nextAttemptAt = record.nextAttemptAt;
    entry.attempts = record.attempts;
    entry.held = record.held;
    entry.hasState = true;
    entry.open = this.#domainLists.of(record.recipients);
    entry.version++;
    this.#count(entry, 1);
    this.#records.set(record);
  }

  /**
   * Changes of one message's files one at a time, each starting from what
   * the one before left (an operator's hold while a delivery settles must
   * not be overwritten, and two writers must not share a temp file).
   */
  #serially<T>(entry: Entry, change: () => Promise<T>): Promise<T> {
    const result = (entry.writing ?? Promise.resolve()).then(change, change);
    const writing = result.catch(() => undefined);
    entry.writing = writing;
    // Forgotten once done, so a quiet message holds no promise.
    void writing.then(() => {
      if (entry.writing === writing) entry.writing = undefined;
    });
    return result;
  }

  #track(record: StoredMessage, hasState: boolean): void {
    const entry = new Entry(record.id, record.receivedAt, record, hasState, this.#domainLists.of(record.recipients));
    this.#entries.set(record.id, entry);
    this.#count(entry, 1);
    this.#schedule(entry);
  }

  #count(entry: Entry, sign: 1 | -1): void {
    this.#counter.change(stateOf(entry), entry.open, sign);
  }

  /** One shared array per distinct list of domains: a million messages to a few domains hold a few arrays. */
  #schedule(entry: Entry): void {
    if (entry.held) return;
    this.#due.add(entry.id, entry.nextAttemptAt, entry.version);
    if (entry.nextAttemptAt <= this.clock.now()) this.#notifyDue();
  }

  /** For DueWindow's refill: every message that is or will be leasable, with its due time. */
  #scanDue(add: (id: string, due: number, version: number) => void): void {
    for (const entry of this.#entries.values()) {
      if (entry.held || entry.leaseToken === SETTLING) continue;
      add(entry.id, entry.leaseToken === undefined ? entry.nextAttemptAt : entry.leaseDeadline, entry.version);
    }
  }

  #isCurrent(item: DueItem): boolean {
    const entry = this.#entries.get(item.id);
    return entry !== undefined && entry.version === item.version && !entry.held;
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

/** A listing straight from the files (no server owns the queue): every record is read. */
function listRecords(records: readonly StoredMessage[], filter: QueueFilter, now: number): QueuedMessage[] {
  const matches = records
    .filter((record) => matchesFilter(record, filter, now))
    .sort(compareListOrder)
    .map(publicView);
  return filter.limit === undefined ? matches : matches.slice(0, filter.limit);
}
