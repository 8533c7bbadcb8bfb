import { fork, type ChildProcess } from 'node:child_process';
import { EXIT } from '../cli/exit-codes.js';
import { STDOUT_IS_TTY_ENV, type Logger } from '../log/logger.js';
import { relayLines } from './line-relay.js';
import { RestartBackoff } from './restart-backoff.js';
import type { TraceSide } from '../trace/trace-event.js';
import { systemClock } from '../clock.js';
import { ExpiringStores } from '../util/expiring-store.js';
import { WORKER_ENV, type PrimaryMessage, type StoreCall, type WorkerAnswer, type WorkerLaunch, type WorkerMessage, type WorkerRequest } from './worker-protocol.js';

/** How long a worker has to answer a request before the primary answers for it. */
const ANSWER_TIMEOUT_MS = 30_000;
/** Beyond server.shutdownTimeout: time for the workers' plugins to close (the workers' own margin) and more. */
const STOP_MARGIN_MS = 15_000;

interface Worker {
  readonly index: number;
  readonly child: ChildProcess;
  readonly startedAt: number;
  ready: boolean;
  readonly pending: Map<number, (answer: WorkerAnswer) => void>;
}

export interface WorkerPrimaryOptions {
  readonly count: number;
  readonly log: Logger;
  readonly shutdownTimeoutMs: number;
  /** What a worker runs: this program again, with the same arguments (default: process.argv). */
  readonly program?: { readonly file: string; readonly args: readonly string[] };
}

/**
 * The primary of `server.workers`: a supervisor that runs no plugin, parses
 * no mail and holds no socket. It starts worker 0, learns from it the ports
 * bound for listeners configured with port 0, then the other workers on the
 * same ports (each binds its own socket with SO_REUSEPORT; the kernel spreads
 * connections over them). It restarts a worker that dies, with the same
 * index (so it takes up its share of the queue again) and a back-off
 * against crash loops; it passes SIGTERM/SIGINT (graceful stop) and SIGHUP
 * (reload) on to every worker, and it relays requests for the whole server
 * (queue commands, /metrics, /ready, reload) from worker 0 to every worker.
 * It keeps the in-memory expiring stores (AUTH lockouts, greylisting) that
 * all workers share.
 * Started as root it stays root, like Postfix's master, so that a worker
 * started again can bind ports below 1024 before it switches users.
 */
export class WorkerPrimary {
  readonly #workers: (Worker | undefined)[] = [];
  readonly #backoff: RestartBackoff[];
  readonly #restarts = new Set<NodeJS.Timeout>();
  #ports: Record<string, number> = {};
  #nextId = 1;
  #stopping: { code: number } | undefined;
  #finished: (code: number) => void = () => undefined;
  readonly #done = new Promise<number>((resolve) => (this.#finished = resolve));
  #serving = false;
  /** Whether worker 0 has trace watchers on each side (its other workers forward their events then). */
  #traceWatched: Record<TraceSide, boolean> = { server: false, client: false };
  /** The in-memory expiring stores every worker shares (AUTH lockouts, greylisting): see shared-expiring-store.ts. */
  readonly #stores = new ExpiringStores(systemClock, undefined);

  constructor(private readonly options: WorkerPrimaryOptions) {
    this.#backoff = Array.from({ length: options.count }, () => new RestartBackoff());
  }

  /** Installs the signal handlers, starts the workers; resolves with the exit status once they have all stopped. */
  async run(): Promise<number> {
    const { log, count } = this.options;
    process.on('SIGHUP', () => void this.#reload());
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => this.#stop(signal, EXIT.ok));
    process.on('uncaughtException', (error) => {
      log.fatal({ err: error, code: 'PETREL_UNCAUGHT_EXCEPTION' }, `uncaught exception in the primary: ${error.message}; stopping the workers`);
      this.#stop('uncaught exception', EXIT.software);
    });
    const first = await this.#start(0);
    if (first !== undefined) return this.#failedStart(0, first);
    const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => this.#start(i + 1)));
    const failed = rest.findIndex((code) => code !== undefined);
    if (failed >= 0) return this.#failedStart(failed + 1, rest[failed] as number);
    if (!this.#stopping) {
      this.#serving = true;
      const pids = this.#workers.map((worker) => worker?.child.pid);
      log.info({ listeners: Object.keys(this.#ports), workers: pids }, 'accepting connections');
    }
    return this.#done;
  }

  /** Forks worker `index`; resolves undefined once it serves, or its exit status if it ended first. */
  #start(index: number): Promise<number | undefined> {
    const launch: WorkerLaunch = { index, count: this.options.count, ports: this.#ports };
    const program = this.options.program ?? { file: process.argv[1], args: process.argv.slice(2) };
    const child = fork(program.file, [...program.args], {
      env: { ...process.env, [WORKER_ENV]: JSON.stringify(launch), ...(process.stdout.isTTY ? { [STDOUT_IS_TTY_ENV]: '1' } : {}) },
      stdio: ['inherit', 'pipe', 'inherit', 'ipc'],
    });
    relayLines(child.stdout!, process.stdout);
    const worker: Worker = { index, child, startedAt: Date.now(), ready: false, pending: new Map() };
    this.#workers[index] = worker;
    return new Promise((resolve) => {
      child.on('message', (message: WorkerMessage) => {
        if (message?.kind === 'ready') {
          worker.ready = true;
          // A worker started while someone watches traces forwards from the start.
          if (index !== 0 && (this.#traceWatched.server || this.#traceWatched.client)) this.#send(worker, { kind: 'trace-watched', watched: this.#traceWatched });
          if (index === 0) this.#ports = { ...message.ports };
          resolve(undefined);
        } else this.#receive(worker, message);
      });
      child.once('exit', (code, signal) => {
        const status = code ?? (signal === 'SIGTERM' ? EXIT.ok : EXIT.software);
        resolve(status);
        this.#exited(worker, code, signal);
      });
    });
  }

  /** A worker could not start: the server does not start either (the config or the machine is at fault, not chance). */
  async #failedStart(index: number, code: number): Promise<number> {
    if (this.#stopping) return this.#done;
    this.options.log.error({ worker: index, code }, `worker ${index} did not start (exit ${code}); stopping`);
    this.#stop('a worker did not start', code === EXIT.ok ? EXIT.software : code);
    return this.#done;
  }

  #exited(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const { log } = this.options;
    if (this.#workers[worker.index] === worker) this.#workers[worker.index] = undefined;
    if (worker.index === 0 && (this.#traceWatched.server || this.#traceWatched.client)) {
      // Its watchers went with it.
      this.#traceWatched = { server: false, client: false };
      for (const other of this.#workers) if (other) this.#send(other, { kind: 'trace-watched', watched: this.#traceWatched });
    }
    for (const answer of worker.pending.values()) answer({ worker: worker.index, ok: false, error: 'the worker exited' });
    worker.pending.clear();
    if (this.#stopping) {
      if (this.#workers.every((w) => w === undefined)) this.#end();
      return;
    }
    if (!this.#serving) return;
    const ran = Date.now() - worker.startedAt;
    const delay = this.#backoff[worker.index].next(ran);
    log.error(
      { worker: worker.index, pid: worker.child.pid, exitCode: code, signal, restartInMs: delay, code: 'PETREL_WORKER_EXITED' },
      `worker ${worker.index} (pid ${worker.child.pid}) exited (${signal ?? `status ${code}`}); starting it again in ${delay} ms`,
    );
    const timer = setTimeout(() => {
      this.#restarts.delete(timer);
      if (this.#stopping) return;
      void this.#start(worker.index).then((failure) => {
        const started = this.#workers[worker.index];
        if (failure === undefined && started) log.info({ worker: worker.index, pid: started.child.pid }, `worker ${worker.index} started again`);
      });
    }, delay);
    this.#restarts.add(timer);
  }

  #receive(worker: Worker, message: WorkerMessage): void {
    if (message?.kind === 'reply') {
      const answer = worker.pending.get(message.id);
      worker.pending.delete(message.id);
      answer?.({ worker: worker.index, ok: message.ok, result: message.result, error: message.error });
    } else if (message?.kind === 'trace-watched') {
      this.#traceWatched = message.watched;
      for (const other of this.#workers) if (other && other !== worker) this.#send(other, message);
    } else if (message?.kind === 'trace') {
      const lead = this.#workers[0];
      if (lead?.ready) this.#send(lead, message);
    } else if (message?.kind === 'store') {
      this.#storeCall(message.call).then(
        (result) => this.#send(worker, { kind: 'stored', id: message.id, ok: true, result: result ?? null }),
        (error: unknown) => this.#send(worker, { kind: 'stored', id: message.id, ok: false, error: (error as Error).message }),
      );
    } else if (message?.kind === 'ask') {
      void this.#askAll(message.request).then((answers) => this.#send(worker, { kind: 'answers', id: message.id, answers }));
    }
  }

  #storeCall(call: StoreCall): Promise<unknown> {
    const store = this.#stores.open('memory', call.namespace);
    const [key, second, third] = call.args as [string, string | number, number];
    switch (call.method) {
      case 'increment':
        return store.increment(key, second as number);
      case 'decrement':
        return store.decrement(key);
      case 'get':
        return store.get(key);
      case 'set':
        return store.set(key, second as string, third);
      case 'setIfAbsent':
        return store.setIfAbsent(key, second as string, third);
      case 'delete':
        return store.delete(key);
    }
  }

  /** One answer per worker index: what it said, or why it could not (being restarted, timed out). */
  #askAll(request: WorkerRequest): Promise<WorkerAnswer[]> {
    return Promise.all(Array.from({ length: this.options.count }, (_, index) => this.#ask(index, request)));
  }

  #ask(index: number, request: WorkerRequest): Promise<WorkerAnswer> {
    const worker = this.#workers[index];
    if (!worker?.ready) return Promise.resolve({ worker: index, ok: false, error: 'the worker is being started again' });
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        worker.pending.delete(id);
        resolve({ worker: index, ok: false, error: `no answer within ${ANSWER_TIMEOUT_MS / 1000} s` });
      }, ANSWER_TIMEOUT_MS);
      worker.pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      if (!this.#send(worker, { kind: 'request', id, request })) worker.pending.get(id)?.({ worker: index, ok: false, error: 'the worker is gone' });
    });
  }

  #send(worker: Worker, message: PrimaryMessage): boolean {
    if (!worker.child.connected) return false;
    worker.child.send(message, (error) => {
      if (error) this.options.log.debug({ err: error, worker: worker.index }, `message to worker ${worker.index} not sent: ${error.message}`);
    });
    return true;
  }

  /** SIGHUP: every worker re-reads the config; each one either switches or refuses it (the same file, so all alike). */
  async #reload(): Promise<void> {
    const { log } = this.options;
    if (this.#stopping || !this.#serving) {
      log.info({ signal: 'SIGHUP' }, 'SIGHUP while starting or stopping: ignored');
      return;
    }
    log.info({ signal: 'SIGHUP' }, 'SIGHUP: reloading the configuration in every worker');
    const answers = await this.#askAll({ op: 'reload' });
    const refused = answers.filter((answer) => !answer.ok);
    if (refused.length === 0) log.info({ workers: answers.length }, 'configuration reloaded by every worker');
    else {
      log.error(
        { refusedBy: refused.map((a) => a.worker), reloadedBy: answers.filter((a) => a.ok).map((a) => a.worker) },
        `reload refused by ${refused.map((a) => `worker ${a.worker} (${a.error})`).join(', ')}`,
      );
    }
  }

  #stop(reason: string, code: number): void {
    const { log } = this.options;
    if (this.#stopping) {
      log.warn({ signal: reason }, `${reason} while shutting down: ignored`);
      return;
    }
    this.#stopping = { code };
    if (code === EXIT.ok) log.info({ signal: reason }, `${reason}: shutting down every worker`);
    for (const timer of this.#restarts) clearTimeout(timer);
    this.#restarts.clear();
    const deadline = this.options.shutdownTimeoutMs + STOP_MARGIN_MS;
    setTimeout(() => {
      log.fatal({ reason }, `the workers did not stop within ${Math.ceil(deadline / 1000)} s; killing them`);
      for (const worker of this.#workers) worker?.child.kill('SIGKILL');
      log.flush();
      process.exit(EXIT.software);
    }, deadline).unref();
    const live = this.#workers.filter((worker): worker is Worker => worker !== undefined);
    if (live.length === 0) this.#end();
    for (const worker of live) worker.child.kill('SIGTERM');
  }

  #end(): void {
    this.options.log.info('stopped');
    this.options.log.flush();
    this.#finished(this.#stopping?.code ?? EXIT.ok);
  }
}
