/**
 * Limits how many deliveries run at once to one destination (a domain, a
 * smarthost), so one slow or throttling receiver cannot take every worker
 * and a burst to one domain does not look like an attack to it. Waiters are
 * served first come, first served.
 */
export class DestinationSlots {
  readonly #busy = new Map<string, number>();
  readonly #waiting = new Map<string, (() => void)[]>();

  constructor(private readonly perDestination: number) {}

  /** Resolves with a release function once a slot for `destination` is free. */
  async acquire(destination: string): Promise<() => void> {
    const busy = this.#busy.get(destination) ?? 0;
    if (busy < this.perDestination) {
      this.#busy.set(destination, busy + 1);
    } else {
      await new Promise<void>((resolve) => {
        const queue = this.#waiting.get(destination) ?? [];
        queue.push(resolve);
        this.#waiting.set(destination, queue);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#release(destination);
    };
  }

  /** Deliveries running to `destination` now. */
  inUse(destination: string): number {
    return this.#busy.get(destination) ?? 0;
  }

  #release(destination: string): void {
    const queue = this.#waiting.get(destination);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.#waiting.delete(destination);
    if (next) {
      next(); // the slot passes straight to the next waiter
      return;
    }
    const busy = (this.#busy.get(destination) ?? 1) - 1;
    if (busy <= 0) this.#busy.delete(destination);
    else this.#busy.set(destination, busy);
  }
}
