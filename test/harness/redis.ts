import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';

/**
 * Redis for tests. The shared server (REDIS_URL, default
 * redis://127.0.0.1:6379) is used with a key prefix of the test's own, whose
 * keys are deleted afterwards. Tests that stop Redis start a dedicated
 * redis-server on a spare port instead: the shared one is never stopped.
 */

export function testRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** `petrel-test:<random>:`, so parallel tests never see each other's keys. */
export function testKeyPrefix(): string {
  return `petrel-test:${randomBytes(6).toString('hex')}:`;
}

/** Fails loudly (never skips) when the test Redis does not answer. */
export async function requireRedis(url = testRedisUrl()): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`these tests need Redis at ${url} (set REDIS_URL, or run .ci/run which starts one): ${(error as Error).message}`);
  } finally {
    client.disconnect();
  }
}

/** Deletes every key under `prefix`; returns how many there were. */
export async function deleteKeys(prefix: string, url = testRedisUrl()): Promise<number> {
  const client = new Redis(url);
  try {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}

/** Keys under `prefix` (without the prefix), for asserting what a test left in Redis. */
export async function listKeys(prefix: string, url = testRedisUrl()): Promise<string[]> {
  const client = new Redis(url);
  try {
    const keys = await client.keys(`${prefix}*`);
    return keys.map((key) => key.slice(prefix.length)).sort();
  } finally {
    client.disconnect();
  }
}

/** A redis-server of the test's own on a spare port, which the test may stop and start again. */
export class DedicatedRedis {
  #process: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<DedicatedRedis> {
    const redis = new DedicatedRedis(await sparePort());
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again), without persistence; resolves when it answers PING. */
  async restart(): Promise<void> {
    if (this.#process) throw new Error('redis-server is already running');
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', (error) => (output += `\n${error.message}`));
    this.#process = child;
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(this.port))) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`redis-server did not start on port ${this.port}:\n${output.slice(-2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Freezes the server (SIGSTOP): connections stay open and nothing answers, like a network partition. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Stops the server at once (SIGKILL: what a crash looks like to clients). */
  async stop(): Promise<void> {
    const child = this.#process;
    if (!child) return;
    this.#process = undefined;
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

async function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk: Buffer) => done(chunk.toString('utf8').startsWith('+PONG')));
  });
}
