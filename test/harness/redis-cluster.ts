import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { sparePort } from './ports.js';
import { deleteKeysUnder } from './redis-keys.js';
import { tempDir } from './temp-dir.js';

const run = promisify(execFile);

/**
 * A real Redis Cluster of three masters that a test starts for itself on
 * spare loopback ports (and removes again), plus key clean-up for it. A
 * missing redis-server fails the test loudly; it never skips. A standalone
 * Redis of a test's own is test/harness/dedicated-redis.ts.
 */

export interface RedisCluster {
  readonly nodes: readonly string[];
  stop(): Promise<void>;
}

/** A key prefix of a test's own (`petrel-test:<random>:`). */
export function testPrefix(): string {
  return `petrel-test:${Math.random().toString(36).slice(2, 10)}:`;
}

/** Deletes every key under `prefix` (on each master of a cluster). */
export async function deleteKeys(clients: readonly Redis[], prefix: string): Promise<void> {
  for (const client of clients) await deleteKeysUnder(client, prefix);
}

async function assertRedisInstalled(): Promise<void> {
  try {
    await run('redis-server', ['--version']);
  } catch {
    throw new Error('redis-server is not installed: this test needs real Redis servers (apt-get install redis-server; .ci/run installs it)');
  }
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with code ${child.exitCode}`);
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}

async function spawnRedis(port: number, dir: string, extra: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...extra], {
    stdio: 'ignore',
  });
  await waitForPing(port, child);
  return child;
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Three masters, slots spread by `redis-cli --cluster create`, appendonly on. */
export async function startRedisCluster(): Promise<RedisCluster> {
  await assertRedisInstalled();
  const dir = tempDir('petrel-cluster-');
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(killChild));
    dir.remove();
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await sparePort({ bus: true });
      ports.push(port);
      children.push(await spawnRedis(port, dir.path, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--appendfilename', `appendonly-${port}.aof`, '--appenddirname', `aof-${port}`]));
    }
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      const client = new Redis({ port, host: '127.0.0.1' });
      try {
        while (!String(await client.cluster('INFO')).includes('cluster_state:ok')) {
          if (Date.now() > deadline) throw new Error(`cluster node ${port} never reached cluster_state:ok`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        client.disconnect();
      }
    }
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
