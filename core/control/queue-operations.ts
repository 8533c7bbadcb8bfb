import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import type { Bouncer } from '../delivery/bouncer.js';
import { bounceByOperator } from '../delivery/operator-bounce.js';
import type { OutboundHooks } from '../delivery/outbound-hooks.js';
import { readHeaderBlock } from '../delivery/outgoing-content.js';
import type { HistoryRecord, OperatorRecord } from '../history/history-record.js';
import type { HistoryStore, MessageHistory } from '../history/history-store.js';
import type { QueueRequest } from './control-protocol.js';
import { countMessages } from '../queue/queue-counts.js';
import type { Queue, QueuedMessage, QueueFilter, QueueState } from '../queue/contract.js';

export interface QueueStats {
  readonly states: Record<QueueState, number>;
  /** Open recipients by destination domain, most first. */
  readonly destinations: readonly { readonly destination: string; readonly messages: number; readonly recipients: number }[];
}

export interface ShownMessage {
  /** Undefined when the message has left the queue but its history is still kept. */
  readonly message?: QueuedMessage;
  /** The outgoing header block, as text ('' once the message has left the queue). */
  readonly headers: string;
  /** What happened to it so far, oldest first (empty with history off). */
  readonly history: readonly HistoryRecord[];
}

export interface QueueOperationsDeps {
  readonly queue: Queue;
  readonly bouncer: Bouncer;
  readonly hooks: OutboundHooks;
  readonly clock: Clock;
  readonly leaseMs: number;
  /** Where operators' actions are recorded, and histories read from. */
  readonly history?: HistoryStore;
}

/** What the control socket and the admin API call: QueueOperations, or its whole-server form with workers (core/workers/). */
export type QueueOperator = Pick<QueueOperations, 'execute' | 'list' | 'show' | 'raw' | 'why' | 'retry' | 'hold' | 'release' | 'delete' | 'bounce' | 'stats'>;

/** Runs one request, as the CLI or the control socket phrased it, on either form. */
export function executeQueueRequest(operator: QueueOperator, request: QueueRequest): Promise<unknown> {
  switch (request.op) {
    case 'list':
      return operator.list(request.filter ?? {});
    case 'stats':
      return operator.stats();
    case 'show':
      return operator.show(request.id);
    case 'retry':
      return operator.retry(request.id);
    case 'hold':
      return operator.hold(request.id);
    case 'release':
      return operator.release(request.id);
    case 'delete':
      return operator.delete(request.id);
    case 'bounce':
      return operator.bounce(request.id);
    case 'why':
      return operator.why(request.query, { since: request.since, limit: request.limit });
  }
}

/**
 * What operators can do to the queue, whichever queue plugin is configured.
 * The CLI runs these in its own process when no server is running, or asks
 * the running server to run them over its control socket (control-server.ts).
 */
export class QueueOperations {
  constructor(private readonly deps: QueueOperationsDeps) {}

  /** Runs one request as the CLI or the control socket phrased it. */
  execute(request: QueueRequest): Promise<unknown> {
    return executeQueueRequest(this, request);
  }

  list(filter: QueueFilter): Promise<QueuedMessage[]> {
    return this.deps.queue.list(filter);
  }

  /** A queued message with its headers and history, or the history alone of one that has left the queue. */
  async show(id: string): Promise<ShownMessage | undefined> {
    const message = await this.deps.queue.inspect(id);
    const history = (await this.deps.history?.recordsOf(id)) ?? [];
    if (!message) return history.length > 0 ? { headers: '', history } : undefined;
    const headers = await readHeaderBlock(await this.deps.queue.read(id)).catch(() => Buffer.alloc(0));
    return { message, headers: headers.toString('utf8'), history };
  }

  /** The message as stored (header block, then body), or undefined when it is not in the queue. */
  async raw(id: string): Promise<Readable | undefined> {
    if (!(await this.deps.queue.inspect(id))) return undefined;
    return this.deps.queue.read(id);
  }

  /** Messages and refusals a queue id, Message-ID, sender or recipient names, from the history. */
  async why(query: string, options: { since?: number; limit?: number } = {}): Promise<MessageHistory[]> {
    return (await this.deps.history?.find(query, options)) ?? [];
  }

  /** Makes one message (or every message not held) due now; returns how many were. */
  async retry(id: string | 'all'): Promise<number> {
    const { queue } = this.deps;
    if (id !== 'all') return this.#recorded(id, 'retry', (await queue.retry(id)) ? 1 : 0);
    let count = 0;
    for (const message of await queue.list()) {
      if (!message.held && (await queue.retry(message.id))) count += this.#recorded(message.id, 'retry', 1);
    }
    return count;
  }

  async hold(id: string): Promise<boolean> {
    return this.#recorded(id, 'hold', await this.deps.queue.hold(id));
  }

  async release(id: string): Promise<boolean> {
    return this.#recorded(id, 'release', await this.deps.queue.release(id));
  }

  /** Removes a message without telling anyone (like postsuper -d). */
  async delete(id: string): Promise<boolean> {
    return this.#recorded(id, 'delete', await this.deps.queue.remove(id));
  }

  /** Fails every open recipient now and sends the sender a DSN. */
  async bounce(id: string): Promise<'bounced' | 'not-found' | 'busy'> {
    const result = await bounceByOperator(id, this.deps);
    this.#recorded(id, 'bounce', result === 'bounced');
    return result;
  }

  /** Records an operator's action in the message's history when it did something (`done` truthy); returns `done`. */
  #recorded<T>(id: string, op: OperatorRecord['op'], done: T): T {
    if (done) this.deps.history?.append({ id, t: 'operator', at: this.deps.clock.now(), op });
    return done;
  }

  /**
   * From the queue's counters when it keeps them (constant time); otherwise
   * by counting a full listing, which grows with the queue.
   */
  async stats(): Promise<QueueStats> {
    const { queue } = this.deps;
    const counts = queue.counts ? await queue.counts() : countMessages(await queue.list());
    const destinations = Object.entries(counts.destinations).map(([destination, entry]) => ({ destination, ...entry }));
    return { states: counts.states, destinations: destinations.sort((a, b) => b.recipients - a.recipients || a.destination.localeCompare(b.destination)) };
  }
}
