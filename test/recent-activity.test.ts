import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentActivity } from '../core/history/recent-activity.js';

const NOW = Date.parse('2026-12-05T03:00:00Z');

function deferred(reply: string) {
  return { id: 'x', t: 'settled' as const, at: NOW, attempt: 1, results: [{ address: 'a@far.test', status: 'deferred' as const, reply }], done: false };
}

/** The overview's commonest deferral reasons, from replies a remote server chose. */
describe('recent activity', () => {
  it('groups deferral replies that differ only by addresses, numbers and ids', () => {
    const activity = new RecentActivity(() => NOW);
    activity.count(deferred('451 4.7.1 Greylisted <a@far.test> from [192.0.2.1] id 0123abcd4567'));
    activity.count(deferred('451 4.7.1 Greylisted <b@far.test> from [192.0.2.9] id 89abcdef0123'));
    assert.deepEqual(activity.snapshot().deferrals, [{ reason: '451 4.7.1 Greylisted … from … id …', count: 2 }]);
  });

  // Before the reply was cut first, its patterns backtracked over the whole reply at each position: a 1 MB reply held the event loop for half an hour.
  it('reads a hostile reply of 1 MB, without spaces or with unclosed brackets, at once', { timeout: 60_000 }, () => {
    const activity = new RecentActivity(() => NOW);
    for (const body of ['x'.repeat(1 << 20), '['.repeat(1 << 20), `${'a@'.repeat(1 << 19)}`]) activity.count(deferred(`451 4.2.1 ${body}`));
    const reasons = activity.snapshot().deferrals;
    assert.equal(reasons.length, 3);
    assert.ok(reasons.every((r) => r.reason.length <= 120));
  });
});
