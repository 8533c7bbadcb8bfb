import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './redis-client.js';

/*
 * What a plugin does with the server's Redis client (TOKENS.Redis) beyond
 * commands. Kept apart from redis-client.ts, which loads ioredis: these only
 * look at the client they are given, so importing them (through `petrel`)
 * costs nothing on a server without Redis.
 */

/** The masters of a client: every cluster master, or the one server. */
export function redisMasters(client: RedisClient): Redis[] {
  return client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
}

/** A second connection with the same settings (for pub/sub or blocking commands, which occupy a connection). */
export function duplicateClient(client: RedisClient): RedisClient {
  return client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate();
}
