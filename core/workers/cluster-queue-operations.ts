import { Readable } from 'node:stream';
import type { QueueRequest } from '../control/control-protocol.js';
import { executeQueueRequest, type QueueOperations, type QueueOperator, type QueueStats, type ShownMessage } from '../control/queue-operations.js';
import type { QueuedMessage, QueueFilter, QueueState } from '../queue/contract.js';
import type { WorkerAnswer, WorkerRequest } from './worker-protocol.js';

/** Asks every worker at once (WorkerChannel.all). */
export type AskAll = (request: WorkerRequest) => Promise<readonly WorkerAnswer[]>;

/**
 * The queue operations of the whole server when several workers each keep
 * a share of the queue: every request goes to every worker and the answers
 * are merged (lists joined, counts added; a message is found where it is).
 * An answer missing from a worker that is being restarted is an error, not
 * a smaller queue: a count that silently leaves out a share would mislead.
 * Histories are one store shared by all workers, so `why` is read here.
 */
export class ClusterQueueOperations implements QueueOperator {
  constructor(
    private readonly askAll: AskAll,
    /** Where histories are read (one store for all workers): this process's own operations. */
    private readonly local: Pick<QueueOperator, 'why' | 'show'>,
  ) {}

  execute(request: QueueRequest): Promise<unknown> {
    return executeQueueRequest(this, request);
  }

  async list(filter: QueueFilter): Promise<QueuedMessage[]> {
    const messages = (await this.#results<QueuedMessage[]>({ op: 'list', filter })).flat();
    messages.sort((a, b) => a.receivedAt - b.receivedAt || a.id.localeCompare(b.id));
    return filter.limit === undefined ? messages : messages.slice(0, filter.limit);
  }

  async stats(): Promise<QueueStats> {
    const states: Record<QueueState, number> = { active: 0, deferred: 0, held: 0 };
    const destinations = new Map<string, { destination: string; messages: number; recipients: number }>();
    for (const share of await this.#results<QueueStats>({ op: 'stats' })) {
      for (const state of Object.keys(states) as QueueState[]) states[state] += share.states[state];
      for (const entry of share.destinations) {
        const sum = destinations.get(entry.destination) ?? { destination: entry.destination, messages: 0, recipients: 0 };
        sum.messages += entry.messages;
        sum.recipients += entry.recipients;
        destinations.set(entry.destination, sum);
      }
    }
    return { states, destinations: [...destinations.values()].sort((a, b) => b.recipients - a.recipients || a.destination.localeCompare(b.destination)) };
  }

  async show(id: string): Promise<ShownMessage | undefined> {
    const shown = await this.#found<ShownMessage | null>({ op: 'show', id }, (answer) => answer?.message !== undefined);
    if (shown) return shown;
    // Left the queue: the history alone, which every worker reads from the same store.
    return this.local.show(id);
  }

  async raw(id: string): Promise<Readable | undefined> {
    const content = await this.#found<string | null>({ op: 'raw', id }, (answer) => typeof answer === 'string');
    return typeof content === 'string' ? Readable.from([Buffer.from(content, 'base64')]) : undefined;
  }

  why(query: string, options: { since?: number; limit?: number } = {}): ReturnType<QueueOperations['why']> {
    return this.local.why(query, options);
  }

  async retry(id: string | 'all'): Promise<number> {
    return (await this.#results<number>({ op: 'retry', id })).reduce((sum, count) => sum + count, 0);
  }

  async hold(id: string): Promise<boolean> {
    return (await this.#found<boolean>({ op: 'hold', id }, (done) => done === true)) === true;
  }

  async release(id: string): Promise<boolean> {
    return (await this.#found<boolean>({ op: 'release', id }, (done) => done === true)) === true;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#found<boolean>({ op: 'delete', id }, (done) => done === true)) === true;
  }

  async bounce(id: string): Promise<'bounced' | 'not-found' | 'busy'> {
    const results = await this.#settled({ op: 'bounce', id });
    const done = results.find((r) => r.ok && r.result !== 'not-found');
    if (done) return done.result as 'bounced' | 'busy';
    this.#throwIfAnyFailed(results);
    return 'not-found';
  }

  /** Every worker's result; any worker that could not answer makes the whole request fail. */
  async #results<T>(request: QueueRequest | { op: 'raw'; id: string }): Promise<T[]> {
    const answers = await this.#settled(request);
    this.#throwIfAnyFailed(answers);
    return answers.map((answer) => answer.result as T);
  }

  /** The answer of the worker whose share holds the message; without one, an error if some worker could not look. */
  async #found<T>(request: QueueRequest | { op: 'raw'; id: string }, isHit: (result: T) => boolean): Promise<T | undefined> {
    const answers = await this.#settled(request);
    const hit = answers.find((answer) => answer.ok && isHit(answer.result as T));
    if (hit) return hit.result as T;
    this.#throwIfAnyFailed(answers);
    return undefined;
  }

  #settled(request: QueueRequest | { op: 'raw'; id: string }): Promise<readonly WorkerAnswer[]> {
    return this.askAll(request.op === 'raw' ? request : { op: 'queue', request });
  }

  #throwIfAnyFailed(answers: readonly WorkerAnswer[]): void {
    const failed = answers.filter((answer) => !answer.ok);
    if (failed.length > 0) throw new Error(failed.map((answer) => `worker ${answer.worker}: ${answer.error}`).join('; '));
  }
}
