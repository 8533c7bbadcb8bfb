import type { SessionEvent, TraceSide } from './trace-event.js';
import type { TraceFilter } from './trace-filter.js';
import type { TraceSubject } from './trace-subject.js';
import { TraceWatcher } from './trace-watcher.js';

/** Events a watcher may have waiting, unless it asks for another number (within these bounds). */
export const DEFAULT_WATCHER_CAPACITY = 2000;
export const WATCHER_CAPACITY_RANGE = { min: 10, max: 100_000 } as const;

export interface WatcherInfo {
  readonly id: number;
  readonly side: TraceSide;
  readonly since: number;
  readonly queued: number;
  readonly lost: number;
}

/**
 * Where live traces meet: sessions publish their events here, watchers
 * (`petrel trace`, the console) subscribe with a filter. Tracing costs
 * nothing while nobody watches: `serverWatched` and `clientWatched` are
 * plain fields, and every place that would describe a line checks one of
 * them before building anything.
 */
export class TraceHub {
  serverWatched = false;
  clientWatched = false;
  readonly #watchers: Record<TraceSide, Set<TraceWatcher>> = { server: new Set(), client: new Set() };
  /** With server.workers: which sides worker 0 has watchers for, and where this worker sends their events. */
  readonly #remote: Record<TraceSide, boolean> = { server: false, client: false };
  /** Whether this hub's own watchers cover each side. */
  #local: Record<TraceSide, boolean> = { server: false, client: false };
  #forward: ((event: SessionEvent, subject: TraceSubject) => void) | undefined;
  /** Worker 0: told when whether anyone watches a side changes, so the other workers start or stop forwarding. */
  #onWatchedChange: ((watched: Record<TraceSide, boolean>) => void) | undefined;

  watch(filter: TraceFilter, capacity = DEFAULT_WATCHER_CAPACITY): TraceWatcher {
    const bounded = Math.min(Math.max(Math.floor(capacity), WATCHER_CAPACITY_RANGE.min), WATCHER_CAPACITY_RANGE.max);
    const watcher = new TraceWatcher(filter, bounded);
    this.#watchers[filter.side].add(watcher);
    this.#refresh();
    return watcher;
  }

  unwatch(watcher: TraceWatcher): void {
    this.#watchers[watcher.filter.side].delete(watcher);
    watcher.onEvent(undefined);
    this.#refresh();
  }

  /** Hands an event to every watcher of its side (each filters and queues it; none can block). */
  publish(event: SessionEvent, subject: TraceSubject): void {
    if (this.#forward && this.#remote[event.side]) this.#forward(event, { ...subject, senders: [...subject.senders], recipients: [...subject.recipients] });
    for (const watcher of this.#watchers[event.side]) {
      try {
        watcher.offer(event, subject);
      } catch {
        // A trace is diagnostics: whatever goes wrong in it must not reach the session that is traced.
      }
    }
  }

  /**
   * Worker 0 of server.workers: `listener` hears whether this hub has
   * watchers on each side whenever that changes, so that the other workers
   * forward their events only while someone watches (see forwardTo).
   */
  onWatchedChange(listener: (watched: Record<TraceSide, boolean>) => void): void {
    this.#onWatchedChange = listener;
  }

  /**
   * A worker other than 0: while worker 0 has watchers on a side (`watched`),
   * every event of that side goes to `forward` too (to be published in worker
   * 0's hub), with a copy of its subject as it is now.
   */
  forwardTo(forward: (event: SessionEvent, subject: TraceSubject) => void, watched: Record<TraceSide, boolean>): void {
    this.#forward = forward;
    this.#remote.server = watched.server;
    this.#remote.client = watched.client;
    this.#refresh();
  }

  watchers(): WatcherInfo[] {
    return [...this.#watchers.server, ...this.#watchers.client].map((w) => ({ id: w.id, side: w.filter.side, since: w.since, queued: w.queued, lost: w.lost }));
  }

  #refresh(): void {
    const local = { server: this.#watchers.server.size > 0, client: this.#watchers.client.size > 0 };
    const changed = local.server !== this.#local.server || local.client !== this.#local.client;
    this.#local = local;
    this.serverWatched = local.server || this.#remote.server;
    this.clientWatched = local.client || this.#remote.client;
    if (changed) this.#onWatchedChange?.(local);
  }

}
