import { Cluster, Redis } from 'ioredis';
import type { RedisConfig } from '../config/schema.js';

/** What TOKENS.Redis holds: one Redis, a Sentinel-managed one, or a Cluster client. All speak the same commands. */
export type RedisClient = Redis | Cluster;

function hostPort(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}

/**
 * Builds the server's Redis client from the `redis:` section. It does not
 * connect yet (Petrel connects at start, so `check-config` stays offline).
 * `commandTimeout` makes a command fail instead of waiting forever for a
 * Redis that is down: the SMTP client then gets 451, never a hanging session.
 */
export function createRedisClient(config: RedisConfig): RedisClient {
  const common = { keyPrefix: config.keyPrefix, lazyConnect: true, commandTimeout: config.commandTimeout };
  if (config.cluster) {
    return new Cluster(config.cluster.map(hostPort), {
      keyPrefix: config.keyPrefix,
      lazyConnect: true,
      redisOptions: { commandTimeout: config.commandTimeout },
    });
  }
  if (config.sentinel) {
    return new Redis({
      ...common,
      name: config.sentinel.name,
      sentinels: config.sentinel.nodes.map(hostPort),
      password: config.sentinel.password,
    });
  }
  return new Redis(config.url, common);
}
