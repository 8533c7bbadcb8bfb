import { MinHeap } from 'petrel/queue';

export interface DueItem {
  readonly id: string;
  readonly due: number;
  /** The entry's version when the item was made; a changed entry makes its old items stale. */
  readonly version: number;
}

/**
 * What is due next, for a queue of any size: only messages due within the
 * window (and leases running out within it) are in the heap, like Postfix's
 * active queue; of the rest (deferred until later) only the earliest due
 * time is known. When that time comes near, one pass over all messages
 * (`scan`) refills the window. A queue of a million deferred messages thus
 * costs no heap item for each, and a scan about once per half window while
 * messages keep coming due.
 */
export class DueWindow {
  #heap = new MinHeap<DueItem>((item) => item.due);
  /** Items due before this are in the heap; later ones only lower #beyond. */
  #horizon = Number.NEGATIVE_INFINITY;
  /** No message outside the heap is due before this (a lower bound: a message that changed may have left it). */
  #beyond = Number.POSITIVE_INFINITY;

  constructor(
    private readonly windowMs: number,
    /** Calls `add` for every message that can be leased or whose lease runs out, with its due time. */
    private readonly scan: (add: (id: string, due: number, version: number) => void) => void,
    /** Whether an item still stands for its message (same version, not held, still queued). */
    private readonly isCurrent: (item: DueItem) => boolean,
  ) {}

  add(id: string, due: number, version: number): void {
    if (due < this.#horizon) this.#heap.push({ id, due, version });
    else if (due < this.#beyond) this.#beyond = due;
  }

  /** The earliest current item due by `now`, left in place; undefined when none is. */
  peekDue(now: number): DueItem | undefined {
    const top = this.#top(now);
    return top !== undefined && top.due <= now ? top : undefined;
  }

  pop(): void {
    this.#heap.pop();
  }

  /** When the earliest message is due, or undefined for an empty queue. */
  nextDueAt(now: number): number | undefined {
    const earliest = Math.min(this.#top(now)?.due ?? Number.POSITIVE_INFINITY, this.#beyond);
    return earliest === Number.POSITIVE_INFINITY ? undefined : earliest;
  }

  #top(now: number): DueItem | undefined {
    if (this.#beyond - this.windowMs / 2 <= now) this.#refill(now);
    for (let top = this.#heap.peek(); top !== undefined; top = this.#heap.peek()) {
      if (this.isCurrent(top)) return top;
      this.#heap.pop();
    }
    return undefined;
  }

  #refill(now: number): void {
    this.#heap = new MinHeap<DueItem>((item) => item.due);
    this.#horizon = now + this.windowMs;
    this.#beyond = Number.POSITIVE_INFINITY;
    this.scan((id, due, version) => this.add(id, due, version));
  }
}
