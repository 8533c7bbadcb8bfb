import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type Clock, inject, injectable, type Lease, type Logger, type NewMessage, type Paths, PetrelError, PidLock, type PluginMeta, type Queue, type QueueCounts, type QueuedMessage, type QueueFilter, type QueueState, type SettleRequest, size, type Spool, stateOf, TOKENS, z } from 'petrel';
import { applyOutcomes, DomainLists, IN_MEMORY_COPY_LIMIT, listEntries, messageStream, MinHeap, QueueCounter, RecentBodies, WriteHealth } from 'petrel/queue';
import { addRecord, type JournalRecord, removeRecord, stateRecord, type StoredMessage } from './journal-record.js';
import { JournalWriter, type Location, segmentName, segmentNumber } from './journal-writer.js';
import { LargeFiles } from './large-files.js';
import { readRecord } from './record-reader.js';
import { scanSegment } from './segment-scan.js';

export const options = z.strictObject({
  directory: z.string().min(1).default('queue').describe('where the queue lives, relative to server.dataDir'),
  inlineLimit: size()
    .default(IN_MEMORY_COPY_LIMIT)
    .describe('messages up to this size go into the journal itself; larger ones are a file each (large/)'),
  segmentSize: size()
    .default(32 * 1024 * 1024)
    .describe('a journal segment is closed and a new one started once it holds this much'),
});

type Options = z.output<typeof options>;

/** Bodies of recently stored messages kept for their first delivery (see RecentBodies). */
const RECENT_BODIES_BYTES = 4 * 1024 * 1024;
/** More segments than this, and the oldest one's live messages are copied forward so it can go (see #compact). */
const COMPACT_BEYOND_SEGMENTS = 4;
/** A message's full record stays in memory only while it is due within this long; later ones are read back when needed. */
const ACTIVE_WINDOW_MS = 60_000;
/** At most this many full records in memory (a backlog that is all due at once is read back as it is leased). */
const MAX_CACHED_RECORDS = 20_000;

/** What the queue keeps in memory per message: small, so a large queue fits; the full record is on disk. */
interface Entry {
  readonly id: string;
  /** Listing order (with the id): a page is chosen from the entries, only its records are read. */
  readonly receivedAt: number;
  /** The message's latest 'add' record (its bytes). */
  add: Location;
  /** Its latest record of any kind ('add' or 'state'): what it is now. */
  state: Location;
  /** When it is due (nextAttemptAt, or a postponement's time). */
  due: number;
  held: boolean;
  attempts: number;
  /** The domain of each open recipient (shared arrays, see DomainLists): the entry's share of the counters. */
  open: readonly string[];
  large: boolean;
  /** Bumped on every change, so stale heap entries are recognised and skipped. */
  version: number;
  /** The full record, kept while the message is due soon (see ACTIVE_WINDOW_MS). */
  record?: StoredMessage;
  lease?: { readonly token: string; readonly deadline: number };
  /** The change being written, if any: the next one waits for it (see #serially). */
  busy?: Promise<unknown>;
}

interface DueItem {
  readonly id: string;
  readonly due: number;
  readonly version: number;
}

/**
 * The default embedded queue: an append-only journal on local disk with
 * group commit. Small messages and every change of state are records in
 * numbered segment files; concurrent enqueues and settles share one write
 * and one fdatasync, and each resolves only after the fdatasync that covers
 * its record. Large messages are a file each, referenced from the journal.
 * The oldest segment is deleted once none of its records is needed (its
 * messages left the queue or were copied forward). One process owns the
 * directory (a pid lock). On start the journal is read from the oldest
 * segment on, and the index rebuilt; a torn tail is ignored.
 */
@injectable()
export default class JournalQueue implements Queue {
  static readonly meta: PluginMeta = {
    name: 'queue-journal',
    version: '1.0.0',
    description: 'durable queue in an append-only journal on local disk (group commit: one fdatasync per batch)',
    provides: ['queue'],
  };
  static readonly options = options;

  readonly directory: string;
  readonly #segments: string;
  readonly #large: LargeFiles;
  readonly #corrupt: string;
  readonly #lock: PidLock;
  readonly #entries = new Map<string, Entry>();
  readonly #due = new MinHeap<DueItem>((item) => item.due);
  readonly #listeners = new Set<() => void>();
  /** Bytes of records still needed per segment (each entry's 'add' and 'state' record counts): a segment at 0 can go. */
  readonly #refs = new Map<number, number>();
  readonly #recent = new RecentBodies(RECENT_BODIES_BYTES);
  /** What counts() answers, kept on every change of the index (no listing). */
  readonly #counter = new QueueCounter();
  readonly #domainLists = new DomainLists();
  readonly #writes: WriteHealth;
  #writer: JournalWriter | undefined;
  #collecting: Promise<void> | undefined;
  #collectAgain = false;
  #compacting: Promise<void> | undefined;
  /** Entries whose full record is in memory (see #cache). */
  #cached = 0;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Spool) private readonly spool: Spool,
  ) {
    // Each worker process of server.workers has its own journal (Paths.partition).
    this.directory = paths.partition(opts.directory);
    this.#segments = join(this.directory, 'journal');
    this.#large = new LargeFiles(join(this.directory, 'large'));
    this.#corrupt = join(this.directory, 'corrupt');
    this.#writes = new WriteHealth(this.#segments, (failure) => {
      if (failure) {
        this.log.error({ err: failure, directory: this.directory, code: 'PETREL_QUEUE_UNAVAILABLE' }, `the queue cannot write: ${failure.message}; /ready is false until it can`);
      } else {
        this.log.info({ directory: this.directory }, 'the queue can write again');
      }
    });
    this.#lock = new PidLock(join(this.directory, 'lock'));
  }

  async start(): Promise<void> {
    await Promise.all([this.#segments, this.#corrupt].map((dir) => mkdir(dir, { recursive: true })));
    await this.#large.prepare();
    if (!(await this.#lock.acquire())) {
      const owner = await this.#lock.owner();
      throw new PetrelError('PETREL_QUEUE_LOCKED', `queue directory ${this.directory} is in use by process ${owner}; stop it first`);
    }
    await this.#refuseSpoolFiles();
    const started = Date.now();
    const { segments, damaged } = await this.#recover();
    this.#writer = new JournalWriter(this.#segments, this.opts.segmentSize, segments.at(-1) ?? 0, (opened, sealed) => {
      this.#refs.set(opened, this.#refs.get(opened) ?? 0);
      if (sealed !== undefined) void this.#collect().then(() => this.#compact());
    });
    await this.#writer.open();
    this.log.info(
      { messages: this.#entries.size, segments: segments.length, damaged, ms: Date.now() - started, directory: this.directory },
      `queue recovered: ${this.#entries.size} messages from ${segments.length} journal segments`,
    );
    await this.#collect();
    void this.#compact();
  }

  /** Batches the journal has written and synced since start (one write and one fdatasync each). */
  get syncs(): number {
    return this.#writer?.syncs ?? 0;
  }

  async close(): Promise<void> {
    await this.#compacting;
    await this.#collecting;
    await this.#writer?.close();
    this.#writer = undefined;
    await this.#large.close();
    await this.#lock.release();
  }

  async enqueue(message: NewMessage): Promise<void> {
    const { file } = message;
    const record: StoredMessage = {
      id: message.id,
      envelope: message.envelope,
      recipients: message.recipients.map((r) => ({ ...r, status: 'pending', attempts: 0 })),
      origin: message.origin,
      size: file.size,
      receivedAt: message.receivedAt,
      nextAttemptAt: message.receivedAt,
      attempts: 0,
      held: false,
      messageId: message.messageId,
      bodyOffset: file.bodyOffset,
      ...(file.size > this.opts.inlineLimit ? { large: true } : {}),
    };
    let location: Location;
    if (record.large) {
      await this.#writes.track(async () => this.#large.store(message, await this.spool.takeHandle(file.path)));
      try {
        location = await this.#append(addRecord(record, message.headerBlock, Buffer.alloc(0)));
      } catch (error) {
        await this.#large.remove(message.id).catch(() => undefined);
        throw error;
      }
    } else {
      const bytes = file.content ?? (await readFile(file.path));
      const body = bytes.subarray(file.bodyOffset, file.size);
      location = await this.#append(addRecord(record, message.headerBlock, body));
      if (file.content) this.#recent.add(message.id, body);
    }
    const entry = this.#track(record, location);
    this.#cache(entry, record);
    this.#schedule(entry);
  }

  async lease(limit: number, leaseMs: number): Promise<Lease[]> {
    const now = this.clock.now();
    const claimed: Entry[] = [];
    while (claimed.length < limit) {
      const top = this.#due.peek();
      if (!top || top.due > now) break;
      this.#due.pop();
      const entry = this.#entries.get(top.id);
      if (!entry || entry.version !== top.version || entry.held) continue;
      if (entry.lease !== undefined && entry.lease.deadline > now) continue;
      this.#leaseTo(entry, now + leaseMs);
      claimed.push(entry);
    }
    const leases: Lease[] = [];
    for (const entry of claimed) {
      try {
        leases.push(await this.#leaseOf(entry));
      } catch (error) {
        // Unreadable now (an I/O error): the message is due again at its lease's deadline.
        this.log.error({ err: error, qid: entry.id }, `cannot read queued message ${entry.id}`);
      }
    }
    return leases;
  }

  async claim(id: string, leaseMs: number): Promise<Lease | undefined> {
    const entry = this.#entries.get(id);
    const now = this.clock.now();
    if (!entry || (entry.lease !== undefined && entry.lease.deadline > now)) return undefined;
    this.#leaseTo(entry, now + leaseMs);
    return this.#leaseOf(entry);
  }

  async nextDueAt(): Promise<number | undefined> {
    // Stale heap entries (superseded versions, removed or held messages) are dropped on the way.
    for (let top = this.#due.peek(); top !== undefined; top = this.#due.peek()) {
      const entry = this.#entries.get(top.id);
      if (entry && entry.version === top.version && !entry.held) return top.due;
      this.#due.pop();
    }
    return undefined;
  }

  async read(id: string): Promise<Readable> {
    const entry = this.#entries.get(id);
    if (!entry) throw new Error(`message ${id} is not in the queue`);
    const add = await this.#read(entry, 'add');
    if (add.kind !== 'add') throw new Error(`message ${id}: its add record is not one`);
    const body = this.#recent.get(id) ?? (add.message.large ? undefined : add.body);
    if (body !== undefined) return Readable.from([Buffer.from(add.headerBlock), body], { objectMode: false });
    return messageStream(Buffer.from(add.headerBlock), { path: this.#large.path(id), size: add.message.size, bodyOffset: add.message.bodyOffset });
  }

  async settle(lease: Lease, request: SettleRequest): Promise<boolean> {
    const entry = this.#entries.get(lease.message.id);
    if (!entry) return false;
    return this.#serially(entry, async () => {
      if (entry.lease?.token !== lease.token || this.#entries.get(entry.id) !== entry) return false;
      const now = this.clock.now();
      const before = await this.#load(entry);
      const { recipients, open } = applyOutcomes(before.recipients, request.outcomes, now);
      // Out of reach of lease() while the record is written: no heap item matches the new version yet.
      entry.version++;
      try {
        if (!open) {
          await this.#append(removeRecord(entry.id));
          await this.#forget(entry);
          return true;
        }
        const updated: StoredMessage = { ...before, recipients, attempts: before.attempts + 1, nextAttemptAt: request.nextAttemptAt ?? now };
        this.#moveState(entry, updated, await this.#append(stateRecord(updated)));
      } catch (error) {
        // Nothing was recorded: the lease is the caller's still, and the message due at its deadline.
        entry.version++;
        this.#due.push({ id: entry.id, due: lease.deadline, version: entry.version });
        throw error;
      }
      entry.lease = undefined;
      this.#schedule(entry);
      return true;
    });
  }

  async abandon(lease: Lease, dueAt?: number): Promise<void> {
    const entry = this.#entries.get(lease.message.id);
    if (!entry || entry.lease?.token !== lease.token) return;
    const now = this.clock.now();
    const due = dueAt === undefined ? now : Math.max(now, dueAt);
    entry.lease = undefined;
    entry.version++;
    // In memory only: a postponement is not worth a disk write; after a restart the message is simply due.
    entry.due = due;
    this.#due.push({ id: entry.id, due, version: entry.version });
    if (due <= now) this.#notifyDue();
  }

  onDue(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** In listing order, a page chosen from the index (see listEntries): only its records are read. */
  async list(filter: QueueFilter = {}): Promise<QueuedMessage[]> {
    // A message removed meanwhile is simply not listed.
    return listEntries(() => this.#entries.values(), filter, this.clock.now(), (entry) => this.#view(entry).catch(() => undefined));
  }

  async inspect(id: string): Promise<QueuedMessage | undefined> {
    const entry = this.#entries.get(id);
    return entry ? this.#view(entry) : undefined;
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
    if (!entry) return false;
    return this.#serially(entry, async () => {
      if (this.#entries.get(id) !== entry) return false;
      await this.#append(removeRecord(id));
      await this.#forget(entry);
      return true;
    });
  }

  /** Counts by state, from counters kept on every change of the index. */
  async stats(): Promise<Record<QueueState, number>> {
    return this.#counter.counts().states;
  }

  /** By state and destination, from counters kept on every change of the index (see QueueCounter). */
  async counts(): Promise<QueueCounts> {
    return this.#counter.counts();
  }

  /** Resolves while the queue can write; after a failed write, only once a write of its own works (WriteHealth). */
  ready(): Promise<void> {
    return this.#writes.check();
  }

  // --- Records ---------------------------------------------------------------------------

  #append(record: Buffer): Promise<Location> {
    const writer = this.#writer;
    if (!writer) return Promise.reject(new Error('the queue is not started'));
    return this.#writes.track(() => writer.append(record));
  }

  /** The record at an entry's 'add' or 'state' location, read from its segment (retried once if compaction moved it meanwhile). */
  async #read(entry: Entry, which: 'add' | 'state'): Promise<JournalRecord> {
    for (let attempt = 0; ; attempt++) {
      const location = entry[which];
      try {
        return await readRecord(join(this.#segments, segmentName(location.segment)), location);
      } catch (error) {
        if (attempt > 0 || entry[which] === location) throw error;
      }
    }
  }

  /** The entry's full record: from memory, or read back from the journal. */
  async #load(entry: Entry): Promise<StoredMessage> {
    if (entry.record) return entry.record;
    const record = await this.#read(entry, 'state');
    if (record.kind === 'remove' || record.message.id !== entry.id) throw new Error(`message ${entry.id}: its journal record is not its own`);
    this.#cache(entry, record.message);
    return record.message;
  }

  /** What operators see: the record, with the due time as it is now (a postponement is kept in memory only). */
  async #view(entry: Entry): Promise<QueuedMessage> {
    const { bodyOffset: _offset, large: _large, ...message } = await this.#load(entry);
    return { ...message, nextAttemptAt: entry.due };
  }

  async #leaseOf(entry: Entry): Promise<Lease> {
    const lease = entry.lease!;
    const { bodyOffset: _offset, large: _large, ...message } = await this.#load(entry);
    return { message, token: lease.token, deadline: lease.deadline };
  }

  #leaseTo(entry: Entry, deadline: number): void {
    entry.lease = { token: randomUUID(), deadline };
    entry.version++;
    // If the holder never settles, the message comes due again at the deadline.
    if (!entry.held) this.#due.push({ id: entry.id, due: deadline, version: entry.version });
  }

  async #update(id: string, change: (record: StoredMessage) => StoredMessage): Promise<boolean> {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    return this.#serially(entry, async () => {
      if (this.#entries.get(id) !== entry) return false;
      const updated = change(await this.#load(entry));
      this.#moveState(entry, updated, await this.#append(stateRecord(updated)));
      entry.version++;
      this.#schedule(entry);
      return true;
    });
  }

  /**
   * Changes of one message one at a time, each starting from what the one
   * before left (an operator's hold while a delivery settles must not be
   * lost, nor compaction copy a record that is being replaced).
   */
  #serially<T>(entry: Entry, change: () => Promise<T>): Promise<T> {
    const previous = entry.busy ?? Promise.resolve();
    const result = previous.then(change, change);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    entry.busy = settled;
    void settled.then(() => {
      if (entry.busy === settled) entry.busy = undefined;
    });
    return result;
  }

  // --- The index -------------------------------------------------------------------------

  #track(record: StoredMessage, location: Location): Entry {
    const entry: Entry = {
      id: record.id,
      receivedAt: record.receivedAt,
      add: location,
      state: location,
      due: record.nextAttemptAt,
      held: record.held,
      attempts: record.attempts,
      open: this.#domainLists.of(record.recipients),
      large: record.large === true,
      version: 0,
    };
    this.#entries.set(record.id, entry);
    this.#counter.change(stateOf(entry), entry.open, 1);
    this.#ref(location.segment, 2 * location.length);
    return entry;
  }

  /** The entry's record is now `record`, written at `location`. */
  #moveState(entry: Entry, record: StoredMessage, location: Location): void {
    this.#ref(location.segment, location.length);
    this.#ref(entry.state.segment, -entry.state.length);
    entry.state = location;
    entry.due = record.nextAttemptAt;
    this.#counter.change(stateOf(entry), entry.open, -1);
    entry.held = record.held;
    entry.attempts = record.attempts;
    entry.open = this.#domainLists.of(record.recipients);
    this.#counter.change(stateOf(entry), entry.open, 1);
    this.#cache(entry, record);
  }

  /** Keeps the full record in memory only while the message is due soon, and for at most MAX_CACHED_RECORDS messages. */
  #cache(entry: Entry, record: StoredMessage): void {
    const keep = !record.held && record.nextAttemptAt <= this.clock.now() + ACTIVE_WINDOW_MS && (entry.record !== undefined || this.#cached < MAX_CACHED_RECORDS);
    this.#cached += (keep ? 1 : 0) - (entry.record !== undefined ? 1 : 0);
    entry.record = keep ? record : undefined;
  }

  /** The message left the queue (its 'remove' record is durable); resolves once segments it freed are deleted. */
  #forget(entry: Entry): Promise<void> {
    this.#unindex(entry);
    entry.lease = undefined;
    this.#recent.delete(entry.id);
    // Left behind if this fails: recovery removes large files no record names.
    const file = entry.large ? this.#large.remove(entry.id).catch((error: unknown) => this.log.warn({ err: error, qid: entry.id }, 'could not remove a large message file')) : undefined;
    return Promise.all([file, this.#collect()]).then(() => undefined);
  }

  /** Takes an entry out of the index: its records no longer keep their segments. */
  #unindex(entry: Entry): void {
    this.#entries.delete(entry.id);
    this.#counter.change(stateOf(entry), entry.open, -1);
    entry.version++;
    if (entry.record !== undefined) this.#cached--;
    entry.record = undefined;
    this.#ref(entry.add.segment, -entry.add.length);
    this.#ref(entry.state.segment, -entry.state.length);
  }

  #ref(segment: number, by: number): void {
    this.#refs.set(segment, (this.#refs.get(segment) ?? 0) + by);
  }

  #schedule(entry: Entry): void {
    if (entry.held) return;
    this.#due.push({ id: entry.id, due: entry.due, version: entry.version });
    if (entry.due <= this.clock.now()) this.#notifyDue();
  }

  #notifyDue(): void {
    for (const listener of this.#listeners) listener();
  }

  // --- Segments: recovery, deletion, compaction ------------------------------------------

  /** Reads every segment, oldest first, and rebuilds the index. */
  async #recover(): Promise<{ segments: number[]; damaged: number }> {
    const segments = (await readdir(this.#segments))
      .map(segmentNumber)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    let damaged = 0;
    for (const segment of segments) {
      this.#refs.set(segment, 0);
      const name = segmentName(segment);
      const bytes = await readFile(join(this.#segments, name));
      // Replayed into the index as it is read, so only the small entries stay in memory, not every record.
      const damage = scanSegment(bytes, (record, offset, length) => {
        const location = { segment, offset, length };
        const known = this.#entries.get(record.kind === 'remove' ? record.id : record.message.id);
        if (record.kind === 'add') {
          // The last 'add' of an id wins: a copy written by compaction replaces the original.
          if (known) this.#unindex(known);
          this.#cache(this.#track(record.message, location), record.message);
        } else if (!known) {
          // A record about a message no 'add' introduced: one that left the queue before.
        } else if (record.kind === 'remove') {
          this.#unindex(known);
        } else {
          this.#moveState(known, record.message, location);
        }
      });
      for (const { offset, length, tail } of damage) {
        if (tail) {
          this.log.warn({ segment: name, offset, bytes: length }, `journal segment ${name}: ${length} bytes at its end are not a whole record (a write torn by a crash); ignored`);
          continue;
        }
        damaged++;
        const kept = join(this.#corrupt, `${name}-${offset}`);
        await writeFileQuietly(kept, bytes.subarray(offset, offset + length));
        this.log.error(
          { segment: name, offset, bytes: length, kept, code: 'PETREL_QUEUE_CORRUPT' },
          `journal segment ${name}: ${length} damaged bytes at offset ${offset} skipped (copied to ${kept}); the records after them were read`,
        );
      }
    }
    for (const entry of this.#entries.values()) this.#schedule(entry);
    await this.#checkLargeFiles();
    return { segments, damaged };
  }

  /** Large files no record names (a crash before their record) go; records whose file is gone are moved aside. */
  async #checkLargeFiles(): Promise<void> {
    const files = new Set(await this.#large.ids());
    for (const entry of [...this.#entries.values()]) {
      if (!entry.large) continue;
      if (files.delete(entry.id)) continue;
      this.log.error({ qid: entry.id, code: 'PETREL_QUEUE_CORRUPT' }, `queued message ${entry.id} has lost its file (large/${entry.id}); dropped`);
      this.#unindex(entry);
    }
    for (const orphan of files) await this.#large.remove(orphan);
  }

  /**
   * Deletes segments no record of which is needed, oldest first and only the
   * oldest: a 'remove' record must outlive the 'add' it cancels, which is in
   * the same segment or an older one.
   */
  #collect(): Promise<void> {
    if (this.#collecting) {
      // Running already, maybe past the segment this caller freed: it looks again before it ends.
      this.#collectAgain = true;
      return this.#collecting;
    }
    this.#collecting = (async () => {
      // (Awaited first, so the `finally` below runs after this assignment even when nothing is to delete.)
      await undefined;
      try {
        do {
          this.#collectAgain = false;
          for (;;) {
            const [oldest, refs] = this.#refs.entries().next().value ?? [];
            if (oldest === undefined || oldest === this.#writer?.segment || refs! > 0) break;
            await unlink(join(this.#segments, segmentName(oldest))).catch((error: NodeJS.ErrnoException) => {
              if (error.code !== 'ENOENT') throw error;
            });
            // Durable before the next one goes: an older segment must never come back without a newer one.
            await this.#writer?.syncDirectory();
            this.#refs.delete(oldest);
          }
        } while (this.#collectAgain);
      } catch (error) {
        this.log.warn({ err: error }, 'could not delete a journal segment; trying again later');
      } finally {
        this.#collecting = undefined;
      }
    })();
    return this.#collecting;
  }

  /**
   * When the journal has more segments than it needs and the oldest is
   * mostly garbage, its live messages (long deferred, held) are written again
   * at the head, so it can be deleted: a few old messages never pin old
   * segments. One run looks only at segments sealed before it began, and
   * only at those at most half live, so it always ends and always frees more
   * than it writes.
   */
  #compact(): Promise<void> {
    this.#compacting ??= this.#compactOldest().finally(() => {
      this.#compacting = undefined;
    });
    return this.#compacting;
  }

  async #compactOldest(): Promise<void> {
    const head = this.#writer?.segment ?? 0;
    try {
      for (;;) {
        const [oldest, live] = this.#refs.entries().next().value ?? [];
        if (this.#refs.size <= COMPACT_BEYOND_SEGMENTS || oldest === undefined || oldest >= head || live! > this.opts.segmentSize / 2) break;
        const pinned = [...this.#entries.values()].filter((e) => e.add.segment === oldest || e.state.segment === oldest);
        await Promise.all(pinned.map((entry) => this.#serially(entry, () => this.#copyForward(entry))));
        await this.#collect();
        if (this.#refs.keys().next().value === oldest) break; // something still holds it; try again at the next rotation
      }
    } catch (error) {
      this.log.warn({ err: error }, 'could not compact the journal; trying again at the next segment');
    }
  }

  async #copyForward(entry: Entry): Promise<void> {
    if (this.#entries.get(entry.id) !== entry) return;
    const record = await this.#load(entry);
    const add = await this.#read(entry, 'add');
    if (add.kind !== 'add') throw new Error(`message ${entry.id}: its add record is not one`);
    const location = await this.#append(addRecord(record, add.headerBlock, add.body));
    if (this.#entries.get(entry.id) !== entry) return;
    this.#ref(location.segment, 2 * location.length);
    this.#ref(entry.add.segment, -entry.add.length);
    this.#ref(entry.state.segment, -entry.state.length);
    entry.add = location;
    entry.state = location;
  }

  /** queue-spool's files in this directory would be stranded: the operator must drain or move them first. */
  async #refuseSpoolFiles(): Promise<void> {
    const spooled = (await readdir(join(this.directory, 'messages')).catch(() => [] as string[])).filter((name) => name.endsWith('.msg'));
    if (spooled.length === 0) return;
    await this.#lock.release();
    throw new PetrelError(
      'PETREL_QUEUE_FOREIGN',
      `queue directory ${this.directory} holds ${spooled.length} messages of queue-spool (messages/*.msg); deliver them with queue-spool first, or give queue-journal another directory`,
    );
  }
}

async function writeFileQuietly(path: string, data: Buffer): Promise<void> {
  await writeFile(`${path}.tmp`, data)
    .then(() => rename(`${path}.tmp`, path))
    .catch(() => undefined);
}
