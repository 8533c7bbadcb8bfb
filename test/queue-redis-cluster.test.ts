import { after, before } from 'node:test';
import { startRedisCluster, type RedisCluster } from './harness/redis-cluster.js';
import { queueContract } from './queue-contract.js';
import { clusterRedis, redisQueueFactory } from './redis-queue-factory.js';

/**
 * The contract suite against a real Redis Cluster of three masters that this
 * test starts on spare loopback ports (redis-server --cluster-enabled yes ×3,
 * redis-cli --cluster create) and removes afterwards. Without redis-server the
 * test fails; it does not skip.
 */
let cluster: RedisCluster | undefined;
before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  await cluster?.stop();
});

queueContract('queue-redis (3-master Redis Cluster)', redisQueueFactory((keyPrefix) => {
  if (!cluster) throw new Error('the test cluster did not start');
  return clusterRedis(cluster.nodes)(keyPrefix);
}));
