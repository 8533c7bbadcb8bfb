import { Redis } from 'ioredis';
import { deleteKeysUnder } from '../test/harness/redis-keys.js';

/** Removes every key under `prefix` (the benchmark's queue-redis data). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await deleteKeysUnder(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
