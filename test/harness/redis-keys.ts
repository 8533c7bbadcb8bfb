import type { Redis } from 'ioredis';

/**
 * Deletes every key under `prefix` on one Redis (a single server or one
 * cluster node). One DEL per key, pipelined per SCAN batch: a cluster node
 * refuses a DEL of keys from different slots, and a pipeline keeps it one
 * round trip per batch. Used by tests and the benchmark to clean up.
 */
export async function deleteKeysUnder(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.del(key);
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([error]) => error);
      if (failed) throw failed[0];
    }
  } while (cursor !== '0');
}
