import { TEST_REDIS_URL } from './harness/redis-servers.js';
import { queueContract } from './queue-contract.js';
import { redisQueueFactory, singleRedis } from './redis-queue-factory.js';

queueContract('queue-redis (single Redis)', redisQueueFactory(singleRedis(TEST_REDIS_URL)));
