import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface ChildOptions {
  /** Extra environment variables. */
  readonly env?: NodeJS.ProcessEnv;
  /** Start it under `ulimit -n` of this many open files (soft and hard), as a shell or unit would. */
  readonly openFiles?: number;
  /** Run it through another command (`unshare -n ...`), which must end by exec'ing the rest of its arguments. */
  readonly prefix?: readonly string[];
  /** The environment `env` is added to; this process's by default. */
  readonly baseEnv?: NodeJS.ProcessEnv;
  /** What runs the CLI (an installed `petrel`, say); this repository's CLI on the node@24 dependency by default. */
  readonly program?: { readonly file: string; readonly args: readonly string[] };
  /** The working directory; this process's by default. */
  readonly cwd?: string;
}

/**
 * A Petrel running as a separate process (the real CLI), for tests that kill
 * it, signal it, or run several nodes side by side. Reads the JSON log on
 * stdout to learn the listener ports (configs use port 0).
 */
export class ChildPetrel {
  readonly logLines: Record<string, unknown>[] = [];
  readonly ports = new Map<string, number>();
  readonly #process: ChildProcess;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stdout = '';
  #stderr = '';
  #partial = '';

  private constructor(
    /** The YAML file it runs on; rewrite it and send SIGHUP to test reloads. */
    readonly configFile: string,
    options: ChildOptions,
  ) {
    const program = options.program ?? {
      file: join(process.cwd(), 'node_modules', '.bin', 'node'),
      args: [join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js')],
    };
    const command = [...(options.prefix ?? []), program.file, ...program.args, 'start', '-c', configFile];
    const env = { ...(options.baseEnv ?? process.env), ...options.env };
    const spawnOptions = { env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
    this.#process =
      options.openFiles === undefined
        ? spawn(command[0], command.slice(1), spawnOptions)
        : spawn('/bin/sh', ['-c', `ulimit -n ${options.openFiles} && exec "$@"`, 'sh', ...command], spawnOptions);
    this.#process.stdout?.on('data', (chunk: Buffer) => this.#onOutput(chunk.toString('utf8')));
    this.#process.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString('utf8');
      this.#onOutput(chunk.toString('utf8'));
    });
    this.#exited = new Promise((resolve) => this.#process.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Writes `config` as YAML into `dir` and starts `petrel start` on it; resolves once it serves connections.
   * `prefix` runs it through another command (`unshare -n ...`), which must end by exec'ing the rest of its arguments.
   */
  static async start(dir: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, prefix: readonly string[] = []): Promise<ChildPetrel> {
    const child = ChildPetrel.launch(dir, config, { env, prefix });
    await child.#accepting(20_000);
    return child;
  }

  /** Starts `petrel start -c configFile` on a config file as it is; resolves once it serves connections. */
  static async startFile(configFile: string, options: ChildOptions = {}): Promise<ChildPetrel> {
    const child = new ChildPetrel(configFile, options);
    await child.#accepting(60_000);
    return child;
  }

  // Ports are bound (and logged) before plugins start; connections are served from this line on.
  #accepting(timeoutMs: number): Promise<void> {
    return this.waitForLog((line) => line.msg === 'accepting connections', 1, timeoutMs);
  }

  /**
   * Writes `config` as YAML into `dir` and runs `petrel start` on it without
   * waiting for anything, for tests of starts that fail or warn.
   */
  static launch(dir: string, config: Record<string, unknown>, options: ChildOptions = {}): ChildPetrel {
    const file = join(dir, `mta-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, stringify(runnableAsRoot(config)));
    return new ChildPetrel(file, options);
  }

  /** Everything it wrote so far, stdout and stderr. */
  get output(): string {
    return this.#stdout;
  }

  /** What it wrote to stderr (the CLI's own messages; the log goes to stdout). */
  get errors(): string {
    return this.#stderr;
  }

  get pid(): number {
    return this.#process.pid as number;
  }

  port(listener = 'mx'): number {
    const port = this.ports.get(listener);
    if (port === undefined) throw new Error(`listener ${listener} is not listening`);
    return port;
  }

  kill(signal: NodeJS.Signals): void {
    this.#process.kill(signal);
  }

  /** SIGTERM, and resolves once the process has exited (at once if it already has). */
  async stop(): Promise<void> {
    if (this.#process.exitCode === null && this.#process.signalCode === null) this.#process.kill('SIGTERM');
    await this.#exited;
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exited;
  }

  /** Resolves when `count` log lines matching `match` have been seen. */
  async waitForLog(match: (line: Record<string, unknown>) => boolean, count = 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.logLines.filter(match).length < count) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for log lines; got:\n${this.#stdout.slice(-4000)}`);
      if (this.#process.exitCode !== null || this.#process.signalCode !== null) {
        throw new Error(`petrel exited (${this.#process.exitCode ?? this.#process.signalCode}):\n${this.#stdout.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  #onOutput(text: string): void {
    this.#stdout += text;
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const raw of lines) {
      if (!raw.startsWith('{')) continue;
      const line = JSON.parse(raw) as Record<string, unknown>;
      this.logLines.push(line);
      if (typeof line.listener === 'string' && typeof line.port === 'number') this.ports.set(line.listener, line.port);
    }
  }
}

/**
 * Tests run as root on CI machines, and `petrel start` as root refuses to run
 * unless server.user says who to be: these tests are about other things, so
 * they say `root` on purpose (test/privileges.test.ts covers the rest).
 */
export function runnableAsRoot(config: Record<string, unknown>): Record<string, unknown> {
  const server = (config.server ?? {}) as Record<string, unknown>;
  if (process.getuid?.() !== 0 || server.user !== undefined) return config;
  return { ...config, server: { ...server, user: 'root' } };
}
