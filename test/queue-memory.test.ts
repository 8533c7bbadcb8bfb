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

/** Runs a queue-memory child and checks what it measured: every message counted, 50 destinations, a page, heap per message under `bound`. */
async function checkHeapInChild(child: string, args: string[], states: Record<string, number>, bound: number): Promise<void> {
  const { stdout } = await run(process.execPath, ['--expose-gc', join(import.meta.dirname, 'fixtures', child), ...args], { maxBuffer: 1 << 20 });
  const measured = JSON.parse(stdout) as { heapBytes: number; states: Record<string, number>; destinations: number; page: number };
  assert.deepEqual(measured.states, states);
  assert.equal(measured.destinations, 50);
  assert.equal(measured.page, 100);
  const perMessage = measured.heapBytes / MESSAGES;
  assert.ok(perMessage < bound, `${Math.round(perMessage)} bytes of heap per queued message`);
}

describe('queue-spool memory per queued message', () => {
  it(`stays under ${MAX_BYTES_PER_MESSAGE} bytes of heap for ${MESSAGES.toLocaleString('en')} deferred messages, with counts and a page at hand`, async () => {
    const data = tempDir('petrel-queue-memory-');
    try {
      seedDeferredMessages(join(data.path, 'queue'), MESSAGES);
      await checkHeapInChild('queue-memory-child.js', [data.path], { active: 0, deferred: MESSAGES, held: 0 }, MAX_BYTES_PER_MESSAGE);
    } finally {
      data.remove();
    }
  });
});

/** queue-journal's index entry is bigger (where its records are, a due-heap item); a full record in memory would be several KiB. */
const MAX_JOURNAL_BYTES_PER_MESSAGE = 600;

describe('queue-journal memory per queued message', () => {
  it(`stays under ${MAX_JOURNAL_BYTES_PER_MESSAGE} bytes of heap for ${MESSAGES.toLocaleString('en')} messages due later, with counts and a page at hand`, async () => {
    const data = tempDir('petrel-journal-memory-');
    try {
      await checkHeapInChild('journal-memory-child.js', [data.path, String(MESSAGES)], { active: MESSAGES, deferred: 0, held: 0 }, MAX_JOURNAL_BYTES_PER_MESSAGE);
    } finally {
      data.remove();
    }
  });
});
