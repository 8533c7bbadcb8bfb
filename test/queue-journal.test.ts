import 'reflect-metadata';
import { makePaths } from '../core/paths.js';
import { createLogger } from '../core/log/logger.js';
import JournalQueue from '../plugins/queue-journal/index.js';
import { Spool } from '../core/spool/spool.js';
import { localQueueFactory, queueContract } from './queue-contract.js';

// Once with the default segment size, once with segments so small that records are
// spread over many of them and compaction runs all the time.
for (const [name, segmentSize] of [
  ['queue-journal', 32 * 1024 * 1024],
  ['queue-journal, 1 KiB segments', 1024],
] as const) {
  queueContract(
    name,
    localQueueFactory(
      (dir, clock) => new JournalQueue({ directory: 'queue', inlineLimit: 64 * 1024, segmentSize }, makePaths(dir, dir), clock, createLogger({ level: 'silent' }), new Spool(dir)),
    ),
  );
}
