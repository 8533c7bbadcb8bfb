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
    for (const watcher of this.#watchers[event.side]) {
      try {
        watcher.offer(event, subject);
      } catch {
        // A trace is diagnostics: whatever goes wrong in it must not reach the session that is traced.
      }
    }
  }

  watchers(): WatcherInfo[] {
    return [...this.#watchers.server, ...this.#watchers.client].map((w) => ({ id: w.id, side: w.filter.side, since: w.since, queued: w.queued, lost: w.lost }));
  }

  #refresh(): void {
    this.serverWatched = this.#watchers.server.size > 0;
    this.clientWatched = this.#watchers.client.size > 0;
  }
}
