export interface DeadlineLimits {
  /** Time for one whole command line, from our previous reply. */
  readonly commandTimeout: number;
  /** Time for a whole message, from 354 to the final dot, before the extension below. */
  readonly dataTimeout: number;
  /** Bytes a second that extend dataTimeout: every minDataRate bytes received add one second. */
  readonly minDataRate: number;
  /** Longest a connection may last. */
  readonly sessionTimeout: number;
}

/**
 * Whose turn it is on a connection: the client owes a command line, or the
 * rest of a message (`bytes` of it received so far), or the server is busy
 * (a hook, a TLS handshake it started, the greeting) and no client time runs.
 */
export type Turn = { readonly kind: 'command' } | { readonly kind: 'data'; readonly bytes: number } | { readonly kind: 'server' };

export type Expired = 'command' | 'data' | 'session';

/**
 * Total-time limits on one connection. smtp-server's socket timeout is an idle
 * timeout that every byte restarts, so a client sending one byte every few
 * seconds (slowloris) could hold a connection, and a slot of `clients`, for
 * ever. These deadlines are not restarted by bytes:
 *
 *   command  the client has `commandTimeout` from our last reply to send the
 *            next whole command line (RFC 5321 4.5.3.2 asks a server to wait
 *            at least 5 minutes for a command: the default is 5 minutes);
 *   data     from 354 the whole message must arrive within `dataTimeout` plus
 *            one second per `minDataRate` bytes received (Postfix's
 *            smtpd_min_data_rate), so a large message on a slow link has time
 *            and a trickle has not. RFC 5321's 3 minutes per data block are a
 *            per-read limit: `socketTimeout` (5 minutes) still applies to each;
 *   session  after `sessionTimeout` the connection is closed as soon as it is
 *            the client's turn to send a command, never in the middle of a
 *            message and never while the server is working on a reply.
 *
 * Time the server spends (hooks, the queue, the 10 minutes RFC 5321 gives it
 * after the final dot) never counts against the client. One timer per
 * connection, armed for the earliest deadline that can apply; it is not
 * touched on every reply: whatever turn starts later has a later deadline.
 */
export class ConnectionDeadlines {
  readonly #limits: DeadlineLimits;
  readonly #turn: () => Turn;
  readonly #expire: (what: Expired) => void;
  readonly #now: () => number;
  readonly #sessionEnds: number;
  #lastReplyAt: number;
  #dataStartedAt = 0;
  #sessionOver = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(limits: DeadlineLimits, turn: () => Turn, expire: (what: Expired) => void, now: () => number = Date.now) {
    this.#limits = limits;
    this.#turn = turn;
    this.#expire = expire;
    this.#now = now;
    this.#lastReplyAt = now();
    this.#sessionEnds = this.#lastReplyAt + limits.sessionTimeout;
    this.#arm(this.#lastReplyAt + this.#shortestTurn());
  }

  /** Every reply we send: the client's turn starts now (354: its message). */
  replied(code: number): void {
    if (this.#stopped) return;
    const now = this.#now();
    this.#lastReplyAt = now;
    if (code === 354) this.#dataStartedAt = now;
    // The session ran out while the server was busy: this reply was the last one.
    if (this.#sessionOver && code !== 421 && code !== 354) this.#fire('session');
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #check(): void {
    if (this.#stopped) return;
    const now = this.#now();
    const turn = this.#turn();
    if (now >= this.#sessionEnds) {
      if (turn.kind === 'command') return this.#fire('session');
      this.#sessionOver = true;
    }
    const due = this.#deadline(turn);
    if (due !== undefined && now >= due) return this.#fire(turn.kind as 'command' | 'data');
    const candidates = [due ?? Infinity, now + this.#shortestTurn()];
    if (!this.#sessionOver) candidates.push(this.#sessionEnds);
    this.#arm(Math.min(...candidates));
  }

  /** When the client's current turn runs out, or undefined while the server has the turn. */
  #deadline(turn: Turn): number | undefined {
    if (turn.kind === 'command') return this.#lastReplyAt + this.#limits.commandTimeout;
    if (turn.kind === 'data') return this.#dataStartedAt + this.#limits.dataTimeout + (turn.bytes / this.#limits.minDataRate) * 1000;
    return undefined;
  }

  /** No turn that starts from now on can end sooner than this. */
  #shortestTurn(): number {
    return Math.min(this.#limits.commandTimeout, this.#limits.dataTimeout);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), Math.max(0, at - this.#now()));
    this.#timer.unref();
  }

  #fire(what: Expired): void {
    this.stop();
    this.#expire(what);
  }
}
