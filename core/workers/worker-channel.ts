import type { SessionEvent, TraceSide } from '../trace/trace-event.js';
import type { TraceHub } from '../trace/trace-hub.js';
import type { TraceSubject } from '../trace/trace-subject.js';
import type { PrimaryMessage, StoreCall, WorkerAnswer, WorkerMessage, WorkerRequest } from './worker-protocol.js';

/** Carries out a request about this worker's share of the server. */
export type WorkerRequestHandler = (request: WorkerRequest) => Promise<unknown>;

/**
 * A worker's side of the IPC channel to the primary: it answers the
 * primary's requests about itself, and asks, through the primary, every
 * worker at once (worker 0 does, for the control socket and the admin API).
 */
export class WorkerChannel {
  #handler: WorkerRequestHandler | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, (answers: readonly WorkerAnswer[]) => void>();
  readonly #storeCalls = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  constructor(readonly index: number) {
    process.on('message', (message: PrimaryMessage) => this.#receive(message));
  }

  /** From now on, requests are answered by `handler` (until then, with an error). */
  serve(handler: WorkerRequestHandler): void {
    this.#handler = handler;
  }

  /** Tells the primary this worker serves connections, on these ports. */
  ready(ports: Record<string, number>): void {
    this.#send({ kind: 'ready', ports });
  }

  /** Asks every worker, this one included; one answer per worker, in index order. */
  all(request: WorkerRequest): Promise<readonly WorkerAnswer[]> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, resolve);
      if (!this.#send({ kind: 'ask', id, request })) {
        this.#pending.delete(id);
        reject(new Error('the primary process is gone'));
      }
    });
  }

  /**
   * Live traces of the whole server in worker 0's hub (where `petrel trace`
   * and the console watch): worker 0 says when it has watchers, the others
   * forward their events while it has.
   */
  shareTraces(hub: TraceHub): void {
    if (this.index === 0) {
      hub.onWatchedChange((watched) => this.#send({ kind: 'trace-watched', watched }));
      this.#traceHub = hub;
    } else {
      const forward = (event: SessionEvent, subject: TraceSubject) => void this.#send({ kind: 'trace', event, subject });
      this.#traceHub = hub;
      this.#forwardTraces = (watched) => hub.forwardTo(forward, watched);
    }
  }

  #traceHub: TraceHub | undefined;
  #forwardTraces: ((watched: Record<TraceSide, boolean>) => void) | undefined;

  /** Calls a store the primary keeps for every worker. */
  store(call: StoreCall): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#storeCalls.set(id, { resolve, reject });
      if (!this.#send({ kind: 'store', id, call })) {
        this.#storeCalls.delete(id);
        reject(new Error('the primary process is gone'));
      }
    });
  }

  #receive(message: PrimaryMessage): void {
    if (message?.kind === 'trace') {
      this.#traceHub?.publish(message.event, message.subject);
    } else if (message?.kind === 'trace-watched') {
      this.#forwardTraces?.(message.watched);
    } else if (message?.kind === 'stored') {
      const call = this.#storeCalls.get(message.id);
      this.#storeCalls.delete(message.id);
      if (message.ok) call?.resolve(message.result);
      else call?.reject(new Error(message.error));
    } else if (message?.kind === 'answers') {
      const resolve = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      resolve?.(message.answers);
    } else if (message?.kind === 'request') {
      const handler = this.#handler;
      const answer = handler ? handler(message.request) : Promise.reject(new Error(`worker ${this.index} is starting`));
      answer.then(
        (result) => this.#send({ kind: 'reply', id: message.id, ok: true, result: result ?? null }),
        (error: unknown) => this.#send({ kind: 'reply', id: message.id, ok: false, error: (error as Error)?.message ?? String(error) }),
      );
    }
  }

  #send(message: WorkerMessage): boolean {
    if (!process.connected || !process.send) return false;
    process.send(message);
    return true;
  }
}
