/** What the pool needs from a connection. SmtpSession has it. */
export interface PooledConnection {
  /** False once the peer closed it or it failed. */
  readonly usable: boolean;
  /** Transactions so far, checked against `maxMessagesPerConnection`. */
  readonly transactions: number;
  /** Checks an idle connection before reuse (an SMTP RSET); false discards it. */
  reset(): Promise<boolean>;
  close(): void;
}

export interface PoolLimits {
  /** Open connections (busy and idle) per key at most; more callers wait for one. */
  readonly maxConnections: number;
  /** A connection is closed after this many transactions instead of going back to the pool. */
  readonly maxMessagesPerConnection: number;
  /** An idle connection is closed after this many ms. */
  readonly idleTimeout: number;
}

interface Idle<C> {
  readonly connection: C;
  readonly timer: NodeJS.Timeout;
}

interface Slot<C> {
  open: number;
  readonly idle: Idle<C>[];
  readonly waiting: (() => void)[];
}

/**
 * Keeps SMTP connections open between deliveries to the same destination
 * (a domain, a smarthost), like Postfix's connection cache: a delivery
 * takes an idle connection when there is one, else opens a new one as long
 * as fewer than `maxConnections` are open for that key, else waits its turn.
 * A connection goes back after use unless it is broken or has carried
 * `maxMessagesPerConnection` transactions; idle ones close after
 * `idleTimeout` so we do not hold a receiver's connection slots for
 * nothing. Limits may be given per call (a delivery carrying the
 * scheduler's outbound shaping limits): a per-call `maxConnections` can only
 * lower the pool's (both are caps on the same destination, and it drops
 * while the destination backs off); other per-call limits replace the
 * pool's defaults.
 */
export class ConnectionPool<C extends PooledConnection> {
  readonly #slots = new Map<string, Slot<C>>();
  #closed = false;

  constructor(private readonly defaults: PoolLimits) {}

  /**
   * A connection for `key`: an idle one that still answers, or a new one
   * from `open`. Give it back with `release` (or `discard`) when done.
   * Rejects with `open`'s error, or when `signal` aborts the wait.
   */
  async acquire(key: string, open: () => Promise<C>, limits: Partial<PoolLimits> = {}, signal?: AbortSignal): Promise<C> {
    const { maxConnections } = this.#limits(limits);
    const slot = this.#slot(key);
    for (;;) {
      if (this.#closed) throw new Error('connection pool closed (shutting down)');
      const idle = slot.idle.pop();
      if (idle) {
        clearTimeout(idle.timer);
        if (idle.connection.usable && (await idle.connection.reset())) return idle.connection;
        idle.connection.close();
        slot.open--;
        continue;
      }
      if (slot.open < maxConnections) {
        slot.open++;
        try {
          return await open();
        } catch (error) {
          slot.open--;
          this.#wakeOne(key, slot);
          throw error;
        }
      }
      await this.#wait(slot, signal);
    }
  }

  /**
   * Gives a connection back: kept idle if it is healthy, under its message
   * limit and within `maxConnections` (which drops while the scheduler backs
   * off from a destination that asked us to slow down), else closed.
   */
  release(key: string, connection: C, limits: Partial<PoolLimits> = {}): void {
    const { maxMessagesPerConnection, idleTimeout, maxConnections } = this.#limits(limits);
    const slot = this.#slot(key);
    if (this.#closed || !connection.usable || connection.transactions >= maxMessagesPerConnection || slot.open > maxConnections) {
      connection.close();
      slot.open--;
    } else {
      const timer = setTimeout(() => this.#expire(key, slot, connection), idleTimeout);
      timer.unref();
      slot.idle.push({ connection, timer });
    }
    this.#wakeOne(key, slot);
  }

  /** Closes a connection that must not be reused (it failed mid-way). */
  discard(key: string, connection: C): void {
    connection.close();
    const slot = this.#slot(key);
    slot.open--;
    this.#wakeOne(key, slot);
  }

  #limits(perCall: Partial<PoolLimits>): PoolLimits {
    const limits = { ...this.defaults, ...perCall };
    return { ...limits, maxConnections: Math.min(this.defaults.maxConnections, perCall.maxConnections ?? Infinity) };
  }

  /** Open connections for `key` (busy and idle). */
  size(key: string): number {
    return this.#slots.get(key)?.open ?? 0;
  }

  /** Closes every idle connection; connections in use close when released. */
  close(): void {
    this.#closed = true;
    for (const [key, slot] of this.#slots) {
      for (const idle of slot.idle.splice(0)) {
        clearTimeout(idle.timer);
        idle.connection.close();
        slot.open--;
      }
      for (const wake of slot.waiting.splice(0)) wake();
      if (slot.open <= 0) this.#slots.delete(key);
    }
  }

  #slot(key: string): Slot<C> {
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = { open: 0, idle: [], waiting: [] };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  #expire(key: string, slot: Slot<C>, connection: C): void {
    const index = slot.idle.findIndex((idle) => idle.connection === connection);
    if (index < 0) return;
    slot.idle.splice(index, 1);
    connection.close();
    slot.open--;
    this.#wakeOne(key, slot);
  }

  #wakeOne(key: string, slot: Slot<C>): void {
    const wake = slot.waiting.shift();
    if (wake) wake();
    else if (slot.open <= 0 && slot.idle.length === 0) this.#slots.delete(key);
  }

  async #wait(slot: Slot<C>, signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const index = slot.waiting.indexOf(wake);
        if (index >= 0) slot.waiting.splice(index, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      slot.waiting.push(wake);
    });
  }
}
