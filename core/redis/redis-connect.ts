import { hideUrlPassword } from '../admin/redact.js';
import type { RedisConfig } from '../config/schema.js';
import { PetrelError } from '../errors.js';
import type { RedisClient } from './redis-client.js';

/**
 * Connects the server's Redis client at start, or fails with one line that
 * says where Redis was looked for (without its password) and why it did not
 * answer. ioredis rejects connect() with a bare "Connection is closed" and
 * reports the reason (ECONNREFUSED, ENOTFOUND, ...) as an 'error' event, so
 * that event is listened to for the duration.
 */
export async function connectRedis(redis: RedisClient, config: RedisConfig | undefined): Promise<void> {
  let reason: Error | undefined;
  const remember = (error: Error) => (reason ??= error);
  redis.on('error', remember);
  try {
    await redis.connect();
  } catch (error) {
    const cause = reason ?? (error as Error);
    throw new PetrelError('PETREL_REDIS_UNREACHABLE', `cannot reach Redis at ${where(config)}: ${cause.message} (is it running? check redis: in the config)`, { cause });
  } finally {
    redis.off('error', remember);
  }
}

function where(config: RedisConfig | undefined): string {
  if (config?.cluster) return `cluster nodes ${config.cluster.join(', ')}`;
  if (config?.sentinel) return `sentinels ${config.sentinel.nodes.join(', ')} (master ${config.sentinel.name})`;
  return config ? hideUrlPassword(config.url) : 'an unconfigured address';
}
