import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartBackoff } from '../core/workers/restart-backoff.js';

describe('RestartBackoff (a dead worker started again)', () => {
  it('waits a quarter of a second at first, doubles while the worker keeps dying soon after it starts, up to a minute', () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 11 }, () => backoff.next(1_000));
    assert.deepEqual(delays, [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('starts the count again after a worker served for a minute', () => {
    const backoff = new RestartBackoff();
    backoff.next(100);
    backoff.next(100);
    assert.equal(backoff.next(100), 1_000);
    assert.equal(backoff.next(60_000), 250, 'a worker that ran a minute dies by chance, not in a loop');
    assert.equal(backoff.next(100), 500);
  });
});
