import { join } from 'node:path';
import { ServerProcess } from './systems/server-process.js';

/** The relay scenario's destination, run as its own process; knows how many messages reached it. */
export class Sink {
  #count = 0;
  #waiters: (() => void)[] = [];

  private constructor(readonly process: ServerProcess) {}

  static async start(): Promise<Sink> {
    let sink: Sink | undefined;
    const server = new ServerProcess(
      'sink',
      join(process.cwd(), 'node_modules', '.bin', 'node'),
      [join(process.cwd(), 'dist', 'bench', 'bare-server.js'), '--count'],
      (line) => {
        const match = /^listening (\d+)/.exec(line);
        return match ? Number(match[1]) : undefined;
      },
      {},
      (line) => {
        if (sink) sink.#onLine(line);
      },
    );
    sink = new Sink(server);
    await server.ready();
    return sink;
  }

  get port(): number {
    return this.process.port;
  }

  get count(): number {
    return this.#count;
  }

  /** Resolves when the sink has received `total` messages in all; rejects after `timeoutMs`. */
  async waitFor(total: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#count < total) {
      if (Date.now() > deadline) throw new Error(`the sink has ${this.#count} of ${total} messages after ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  #onLine(line: string): void {
    const match = /^count (\d+)/.exec(line);
    if (!match) return;
    this.#count = Number(match[1]);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
