import 'reflect-metadata';
import { makePaths } from '../core/paths.js';
import { createLogger } from '../core/log/logger.js';
import JournalQueue from '../plugins/queue-journal/index.js';
import { Spool } from '../core/spool/spool.js';
import { tempDir } from './harness/temp-dir.js';
import type { ManualClock } from './fixtures/manual-clock.js';
import { queueContract, type ContractQueue } from './queue-contract.js';

for (const [name, segmentSize] of [['queue-journal', 32 * 1024 * 1024], ['queue-journal, 1 KiB segments (compaction on every few records)', 1024]] as const) {
  queueContract(name, async (clock: ManualClock) => {
    const dir = tempDir('petrel-journal-');
    const make = async (): Promise<ContractQueue> => {
      const queue = new JournalQueue({ directory: 'queue', inlineLimit: 64 * 1024, segmentSize }, makePaths(dir.path, dir.path), clock, createLogger({ level: 'silent' }), new Spool(dir.path));
      await queue.start();
      return queue;
    };
    const opened: ContractQueue[] = [await make()];
    return {
      queue: opened[0],
      // One process owns a queue directory: the "other node" is the same queue.
      peer: async () => opened[0],
      restart: async () => {
        const queue = await make();
        opened.push(queue);
        return queue;
      },
      cleanup: async () => {
        for (const queue of opened) await queue.close?.();
        dir.remove();
      },
    };
  });
}
