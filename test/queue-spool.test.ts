import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { makePaths } from '../core/paths.js';
import { createLogger } from '../core/log/logger.js';
import SpoolQueue from '../plugins/queue-spool/index.js';
import { Spool } from '../core/spool/spool.js';
import { tempDir } from './harness/temp-dir.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { seedDeferredMessages } from './harness/spool-seed.js';
import { localQueueFactory, queueContract } from './queue-contract.js';

queueContract(
  'queue-spool',
  localQueueFactory((dir, clock) => new SpoolQueue({ directory: 'queue' }, makePaths(dir, dir), clock, createLogger({ level: 'silent' }), new Spool(dir))),
);

describe('queue-spool recovery', () => {
  it('moves unreadable messages to corrupt/, removes a .state left without its .msg, and recovers the rest with their counts', async () => {
    const dir = tempDir('petrel-spool-recovery-');
    try {
      const queueDir = join(dir.path, 'queue');
      const [good] = seedDeferredMessages(queueDir, 1);
      const messages = join(queueDir, 'messages');
      writeFileSync(join(messages, '0mx0sj0xy-0000000000000001.msg'), 'not a queue file at all');
      writeFileSync(join(messages, '0mx0sj0xy-0000000000000002.state'), '{}');
      const queue = new SpoolQueue({ directory: 'queue' }, makePaths(dir.path, dir.path), new ManualClock(), createLogger({ level: 'silent' }), new Spool(dir.path));
      await queue.start();
      try {
        assert.deepEqual((await queue.list()).map((m) => m.id), [good]);
        assert.deepEqual((await queue.counts()).states, { active: 0, deferred: 1, held: 0 });
        assert.deepEqual(readdirSync(join(queueDir, 'corrupt')), ['0mx0sj0xy-0000000000000001.msg']);
        assert.deepEqual(readdirSync(messages), [`${good}.msg`]);
      } finally {
        await queue.close();
      }
    } finally {
      dir.remove();
    }
  });
});
