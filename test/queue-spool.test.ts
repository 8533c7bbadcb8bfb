import 'reflect-metadata';
import { makePaths } from '../core/paths.js';
import { createLogger } from '../core/log/logger.js';
import SpoolQueue from '../plugins/queue-spool/index.js';
import { Spool } from '../core/spool/spool.js';
import { tempDir } from './harness/temp-dir.js';
import type { ManualClock } from './fixtures/manual-clock.js';
import { queueContract, type ContractQueue } from './queue-contract.js';

queueContract('queue-spool', async (clock: ManualClock) => {
  const dir = tempDir('petrel-spool-');
  const make = async (): Promise<ContractQueue> => {
    const queue = new SpoolQueue({ directory: 'queue' }, makePaths(dir.path, dir.path), clock, createLogger({ level: 'silent' }), new Spool(dir.path));
    await queue.start();
    return queue;
  };
  const opened: ContractQueue[] = [await make()];
  return {
    queue: opened[0],
    // One process owns a spool directory: the "other node" is the same queue.
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
