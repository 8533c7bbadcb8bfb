import 'reflect-metadata';
import { makePaths } from '../core/paths.js';
import { createLogger } from '../core/log/logger.js';
import SpoolQueue from '../plugins/queue-spool/index.js';
import { Spool } from '../core/spool/spool.js';
import { localQueueFactory, queueContract } from './queue-contract.js';

queueContract(
  'queue-spool',
  localQueueFactory((dir, clock) => new SpoolQueue({ directory: 'queue' }, makePaths(dir, dir), clock, createLogger({ level: 'silent' }), new Spool(dir))),
);
