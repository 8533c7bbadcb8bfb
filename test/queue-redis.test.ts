import { REDIS_URL } from './fixtures/redis.js';
import { queueContract } from './queue-contract.js';
import { redisQueueFactory, singleRedis } from './redis-queue-factory.js';

queueContract('queue-redis (single Redis)', redisQueueFactory(singleRedis(REDIS_URL)));
