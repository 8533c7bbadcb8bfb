import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { cpuSeconds, ifRunning, memory, resetPeakRss, treeCpuSeconds, treeOf } from '../process-stats.js';

/** What the benchmark needs from a running system under test. */
export interface RunningSystem {
  readonly name: string;
  readonly port: number;
  /** CPU seconds used so far. */
  cpu(): number;
  memory(): { rss: number; peakRss: number };
  resetPeak(): void;
  stop(): Promise<void>;
}

/**
 * Where a system listens: read off a line of its output, or, for a system
 * told its port in its config that prints nothing when it starts listening,
 * that port (the system is ready once the port accepts a connection).
 */
export type ListeningPort = ((line: string) => number | undefined) | number;

/**
 * One system under test, running as its own process so its CPU time and
 * memory are its own.
 */
export class ServerProcess implements RunningSystem {
  readonly #child: ChildProcess;
  #output = '';
  #port: number | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    private readonly portFrom: ListeningPort,
    env: NodeJS.ProcessEnv = {},
    /** Called with every stdout line (the sink reports its count this way). */
    private readonly onLine?: (line: string) => void,
    /**
     * A system of several processes (Petrel with server.workers): CPU is the
     * whole tree's, memory the sum of every process's resident memory and of
     * every process's peak.
     */
    private readonly tree = false,
  ) {
    this.#child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (this.onLine) {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.onLine(line);
      }
      // Keep only the tail: a busy server's log would otherwise fill memory.
      this.#output = (this.#output + text).slice(-64 * 1024);
      if (this.#port === undefined && typeof this.portFrom === 'function') {
        for (const line of this.#output.split('\n')) {
          const port = this.portFrom(line);
          if (port !== undefined) {
            this.#port = port;
            break;
          }
        }
      }
    };
    this.#child.stdout?.on('data', onData);
    this.#child.stderr?.on('data', onData);
  }

  get pid(): number {
    return this.#child.pid as number;
  }

  /** Whether the process has ended, with the tail of what it printed (for the error that says so). */
  get ended(): { output: string } | undefined {
    return this.#child.exitCode !== null || this.#child.signalCode !== null ? { output: this.#output } : undefined;
  }

  get port(): number {
    if (this.#port === undefined) throw new Error(`${this.name} is not listening`);
    return this.#port;
  }

  async ready(timeoutMs = 30_000): Promise<this> {
    const deadline = Date.now() + timeoutMs;
    while (this.#port === undefined) {
      if (this.#child.exitCode !== null) throw new Error(`${this.name} exited:\n${this.#output}`);
      if (Date.now() > deadline) {
        await this.stop(); // not in the benchmark's list of running systems yet: nobody else would
        throw new Error(`${this.name} did not start:\n${this.#output}`);
      }
      if (typeof this.portFrom === 'number' && (await acceptsConnections(this.portFrom))) this.#port = this.portFrom;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this;
  }

  cpu(): number {
    return this.tree ? treeCpuSeconds(this.pid) : cpuSeconds(this.pid);
  }

  memory(): { rss: number; peakRss: number } {
    if (!this.tree) return memory(this.pid);
    return treeOf(this.pid)
      .map((pid) => ifRunning(() => memory(pid), { rss: 0, peakRss: 0 }))
      .reduce((sum, m) => ({ rss: sum.rss + m.rss, peakRss: sum.peakRss + m.peakRss }), { rss: 0, peakRss: 0 });
  }

  resetPeak(): void {
    for (const pid of this.tree ? treeOf(this.pid) : [this.pid]) resetPeakRss(pid);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Whether something accepts TCP connections on a loopback port (the probe is closed at once). */
function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
