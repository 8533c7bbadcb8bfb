import type { Clock } from '../clock.js';
import type { Bouncer } from '../delivery/bouncer.js';
import { bounceByOperator } from '../delivery/operator-bounce.js';
import { domainOf, type OutboundHooks } from '../delivery/outbound-hooks.js';
import { readHeaderBlock } from '../delivery/outgoing-content.js';
import type { QueueRequest } from './control-protocol.js';
import { stateOf, type Queue, type QueuedMessage, type QueueFilter, type QueueState } from '../queue/contract.js';

export interface QueueStats {
  readonly states: Record<QueueState, number>;
  /** Open recipients by destination domain, most first. */
  readonly destinations: readonly { readonly destination: string; readonly messages: number; readonly recipients: number }[];
}

export interface ShownMessage {
  readonly message: QueuedMessage;
  /** The outgoing header block, as text. */
  readonly headers: string;
}

/**
 * What operators can do to the queue, whichever queue plugin is configured.
 * The CLI runs these in its own process when no server is running, or asks
 * the running server to run them over its control socket (control-server.ts).
 */
export class QueueOperations {
  constructor(
    private readonly deps: { queue: Queue; bouncer: Bouncer; hooks: OutboundHooks; clock: Clock; leaseMs: number },
  ) {}

  /** Runs one request as the CLI or the control socket phrased it. */
  execute(request: QueueRequest): Promise<unknown> {
    switch (request.op) {
      case 'list':
        return this.list(request.filter ?? {});
      case 'stats':
        return this.stats();
      case 'show':
        return this.show(request.id);
      case 'retry':
        return this.retry(request.id);
      case 'hold':
        return this.hold(request.id);
      case 'release':
        return this.release(request.id);
      case 'delete':
        return this.delete(request.id);
      case 'bounce':
        return this.bounce(request.id);
    }
  }

  list(filter: QueueFilter): Promise<QueuedMessage[]> {
    return this.deps.queue.list(filter);
  }

  async show(id: string): Promise<ShownMessage | undefined> {
    const message = await this.deps.queue.inspect(id);
    if (!message) return undefined;
    const headers = await readHeaderBlock(await this.deps.queue.read(id)).catch(() => Buffer.alloc(0));
    return { message, headers: headers.toString('utf8') };
  }

  /** Makes one message (or every message not held) due now; returns how many were. */
  async retry(id: string | 'all'): Promise<number> {
    const { queue } = this.deps;
    if (id !== 'all') return (await queue.retry(id)) ? 1 : 0;
    let count = 0;
    for (const message of await queue.list()) {
      if (!message.held && (await queue.retry(message.id))) count++;
    }
    return count;
  }

  hold(id: string): Promise<boolean> {
    return this.deps.queue.hold(id);
  }

  release(id: string): Promise<boolean> {
    return this.deps.queue.release(id);
  }

  /** Removes a message without telling anyone (like postsuper -d). */
  delete(id: string): Promise<boolean> {
    return this.deps.queue.remove(id);
  }

  /** Fails every open recipient now and sends the sender a DSN. */
  bounce(id: string): Promise<'bounced' | 'not-found' | 'busy'> {
    return bounceByOperator(id, this.deps);
  }

  async stats(): Promise<QueueStats> {
    const messages = await this.deps.queue.list();
    const states: Record<QueueState, number> = { active: 0, deferred: 0, held: 0 };
    const destinations = new Map<string, { destination: string; messages: number; recipients: number }>();
    for (const message of messages) {
      states[stateOf(message)]++;
      const seen = new Set<string>();
      for (const recipient of message.recipients) {
        if (recipient.status !== 'pending' && recipient.status !== 'deferred') continue;
        const destination = domainOf(recipient.address);
        const entry = destinations.get(destination) ?? { destination, messages: 0, recipients: 0 };
        entry.recipients++;
        if (!seen.has(destination)) entry.messages++;
        seen.add(destination);
        destinations.set(destination, entry);
      }
    }
    return { states, destinations: [...destinations.values()].sort((a, b) => b.recipients - a.recipients || a.destination.localeCompare(b.destination)) };
  }
}
