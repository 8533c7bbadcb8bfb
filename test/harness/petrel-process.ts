import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../core/cli/petrel.js', import.meta.url));

/**
 * A real Petrel in a child process (`petrel start -c <file>`), for tests
 * that need several nodes or a crash: SIGKILL is as real as it gets.
 */
export class PetrelProcess {
  #child: ChildProcess | undefined;
  /** stdout and stderr of every run, for the message of a failed test. */
  output = '';

  constructor(
    readonly configFile: string,
    readonly port: number,
  ) {}

  /** Writes `config` (JSON is YAML) to `<dir>/<name>.yaml`; the SMTP listener is `mx` on `port`. */
  static create(dir: string, name: string, config: Record<string, unknown>, port: number): PetrelProcess {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, JSON.stringify(config, null, 2));
    return new PetrelProcess(file, port);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process and resolves once its SMTP port accepts connections. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, [CLI, 'start', '-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const deadline = Date.now() + 15_000;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null) throw new Error(`petrel exited with code ${child.exitCode} while starting:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`petrel did not listen on ${this.port} within 15 s:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Kills the process with `signal` and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** Graceful stop (SIGTERM); resolves with the exit code. */
  async stop(): Promise<number | null> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    await this.kill('SIGTERM');
    return child.exitCode;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
