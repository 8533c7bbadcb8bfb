import 'reflect-metadata';
import { Cluster, Redis } from 'ioredis';
import type { PetrelConfig } from '../core/config/schema.js';
import { createLogger } from '../core/log/logger.js';
import type { RedisClient } from '../core/redis/redis-client.js';
import { redisMasters } from '../core/redis/redis-topology.js';
import RedisQueue from '../plugins/queue-redis/index.js';
import { deleteKeys, testPrefix } from './harness/redis-cluster.js';
import type { ContractQueue, QueueFactory } from './queue-contract.js';

/**
 * Makes queue-redis instances for the contract suite: each "node" has its
 * own connection, all share one key prefix of the test's own, deleted
 * afterwards.
 */
export function redisQueueFactory(connect: (keyPrefix: string) => RedisClient): QueueFactory {
  return async (clock) => {
    const keyPrefix = testPrefix();
    const clients: RedisClient[] = [];
    const queues: ContractQueue[] = [];
    const make = async (): Promise<ContractQueue> => {
      const client = connect(keyPrefix);
      client.on('error', () => undefined);
      clients.push(client);
      const config = { redis: { keyPrefix } } as PetrelConfig;
      const queue = new RedisQueue({ prefix: 'queue:', checkPersistence: false }, client, config, clock, createLogger({ level: 'silent' }));
      await queue.start();
      queues.push(queue);
      return queue;
    };
    const queue = await make();
    return {
      queue,
      peer: make,
      restart: make,
      cleanup: async () => {
        for (const q of queues) await q.close?.();
        const admin = clients[0];
        // Keys are deleted through a connection without keyPrefix (SCAN does not apply it).
        const masters = redisMasters(admin).map((m) => new Redis({ host: m.options.host, port: m.options.port }));
        await deleteKeys(masters, keyPrefix);
        for (const m of masters) m.disconnect();
        for (const client of clients) client.disconnect();
      },
    };
  };
}

export function singleRedis(url: string): (keyPrefix: string) => RedisClient {
  return (keyPrefix) => new Redis(url, { keyPrefix });
}

export function clusterRedis(nodes: readonly string[]): (keyPrefix: string) => RedisClient {
  return (keyPrefix) =>
    new Cluster(
      nodes.map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })),
      { keyPrefix },
    );
}
