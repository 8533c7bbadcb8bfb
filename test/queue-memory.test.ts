import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { seedDeferredMessages } from './harness/spool-seed.js';
import { tempDir } from './harness/temp-dir.js';

const run = promisify(execFile);

/** 20,000 is enough for the per-message cost to dwarf the noise of a heap measurement. */
const MESSAGES = 20_000;
/**
 * Heap per queued message that queue-spool may hold. A compact entry costs
 * about 230 bytes (docs/performance.md); a full record in memory (envelope,
 * recipients, header block) would be several times this bound.
 */
const MAX_BYTES_PER_MESSAGE = 450;

describe('queue-spool memory per queued message', () => {
  it(`stays under ${MAX_BYTES_PER_MESSAGE} bytes of heap for ${MESSAGES.toLocaleString('en')} deferred messages, with counts and a page at hand`, async () => {
    const data = tempDir('petrel-queue-memory-');
    try {
      seedDeferredMessages(join(data.path, 'queue'), MESSAGES);
      const child = join(import.meta.dirname, 'fixtures', 'queue-memory-child.js');
      const { stdout } = await run(process.execPath, ['--expose-gc', child, data.path], { maxBuffer: 1 << 20 });
      const measured = JSON.parse(stdout) as { heapBytes: number; states: Record<string, number>; destinations: number; page: number };
      assert.deepEqual(measured.states, { active: 0, deferred: MESSAGES, held: 0 });
      assert.equal(measured.destinations, 50);
      assert.equal(measured.page, 100);
      const perMessage = measured.heapBytes / MESSAGES;
      assert.ok(perMessage < MAX_BYTES_PER_MESSAGE, `${Math.round(perMessage)} bytes of heap per queued message`);
    } finally {
      data.remove();
    }
  });
});
