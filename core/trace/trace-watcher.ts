import type { SessionEvent, TraceEvent } from './trace-event.js';
import { fitsConnection, fitsEnvelope, type TraceFilter } from './trace-filter.js';
import type { TraceSubject } from './trace-subject.js';

/** Events of one session kept while its envelope is not known yet (a sender or recipient filter). */
const PENDING_PER_SESSION = 200;

/**
 * One watcher of a live trace: its filter and a bounded queue of the events
 * that passed it, read by whoever streams them (the admin listener). Mail
 * never waits for a watcher: `offer` only appends to the queue, and when the
 * queue is full (the watcher reads more slowly than sessions talk) the event
 * is dropped and counted; the watcher is then told how many it lost, in
 * order, before the next event it gets.
 */
export class TraceWatcher {
  static #next = 1;
  readonly id = TraceWatcher.#next++;
  readonly since = Date.now();
  readonly #queue: TraceEvent[] = [];
  /** Sessions whose sender or recipient filter is still undecided: their events so far. */
  readonly #pending = new Map<string, SessionEvent[]>();
  /** Sessions that matched a sender or recipient filter; they stay matched to their end. */
  readonly #matched = new Set<string>();
  #lostSinceReported = 0;
  #lostTotal = 0;
  #finished = false;
  #onEvent: (() => void) | undefined;

  constructor(
    readonly filter: TraceFilter,
    /** Events queued at most; past that they are dropped and counted. */
    readonly capacity: number,
  ) {}

  /** Events dropped for this watcher since it started. */
  get lost(): number {
    return this.#lostTotal;
  }

  /** Events waiting to be read. */
  get queued(): number {
    return this.#queue.length;
  }

  /** True once an only-one trace has seen its session end and everything was read. */
  get done(): boolean {
    return this.#finished && this.#queue.length === 0 && this.#lostSinceReported === 0;
  }

  /** Called after events were queued (the reader batches its writes). */
  onEvent(listener: (() => void) | undefined): void {
    this.#onEvent = listener;
  }

  offer(event: SessionEvent, subject: TraceSubject): void {
    if (this.#finished) return;
    const conn = event.conn;
    if (!fitsConnection(this.filter, subject)) {
      if (event.kind === 'close') this.#forget(conn);
      return;
    }
    let matched = true;
    if (this.filter.sender !== undefined || this.filter.rcpt !== undefined) matched = this.#envelopeMatches(event, subject);
    if (!matched) return;
    this.#push(event);
    if (event.kind === 'close') {
      this.#forget(conn);
      if (this.filter.onlyOne) this.#finished = true;
    }
  }

  /** Up to `max` events, oldest first; a `lost` event stands where events were dropped. */
  take(max: number): TraceEvent[] {
    const taken = this.#queue.splice(0, max);
    if (this.#queue.length === 0 && this.#lostSinceReported > 0 && taken.length < max) {
      taken.push({ kind: 'lost', at: Date.now(), count: this.#lostSinceReported });
      this.#lostSinceReported = 0;
    }
    return taken;
  }

  /** Sender and recipient filters: a session's events wait until its envelope fits (or it ends). */
  #envelopeMatches(event: SessionEvent, subject: TraceSubject): boolean {
    const conn = event.conn;
    if (this.#matched.has(conn)) return true;
    const pending = this.#pending.get(conn) ?? [];
    if (fitsEnvelope(this.filter, subject)) {
      this.#pending.delete(conn);
      this.#matched.add(conn);
      for (const earlier of pending) this.#push(earlier);
      return true;
    }
    if (event.kind === 'close') {
      this.#pending.delete(conn);
      return false;
    }
    if (pending.length >= PENDING_PER_SESSION) pending.splice(1, 1); // keep the open event, drop the oldest line after it
    pending.push(event);
    this.#pending.set(conn, pending);
    return false;
  }

  #forget(conn: string): void {
    this.#pending.delete(conn);
    this.#matched.delete(conn);
  }

  #push(event: TraceEvent): void {
    if (this.#queue.length >= this.capacity) {
      this.#lostSinceReported++;
      this.#lostTotal++;
      return;
    }
    if (this.#lostSinceReported > 0) {
      if (this.#queue.length + 1 >= this.capacity) {
        this.#lostSinceReported++;
        this.#lostTotal++;
        return;
      }
      this.#queue.push({ kind: 'lost', at: event.at, count: this.#lostSinceReported });
      this.#lostSinceReported = 0;
    }
    this.#queue.push(event);
    this.#onEvent?.();
  }
}
