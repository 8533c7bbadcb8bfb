import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReply, parseReply } from '../core/delivery/outbound.js';
import { RetrySchedule } from '../core/delivery/retry-schedule.js';

describe('retry schedule', () => {
  const schedule = new RetrySchedule({ retry: [300_000, 600_000, 3_600_000], expireAfter: 5 * 86_400_000 });
  const received = Date.UTC(2026, 10, 28);

  it('waits the n-th step after the n-th failure, then repeats the last step', () => {
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => schedule.delayAfter(n)), [300_000, 600_000, 3_600_000, 3_600_000, 3_600_000]);
  });

  it('pulls the last retry in to the expiry time, and knows when a message expired', () => {
    const nearlyExpired = received + 5 * 86_400_000 - 60_000;
    assert.equal(schedule.nextAttemptAt(received, 7, nearlyExpired), received + 5 * 86_400_000);
    assert.equal(schedule.nextAttemptAt(received, 1, received), received + 300_000);
    assert.equal(schedule.isExpired(received, nearlyExpired), false);
    assert.equal(schedule.isExpired(received, received + 5 * 86_400_000), true);
  });
});

describe('reply parsing', () => {
  it('reads code, enhanced code and text, joining multi-line replies, and marks it as a server\'s own', () => {
    assert.deepEqual(parseReply('550 5.1.1 <x@example.org>: Recipient address rejected', 'mx.example.org'), {
      code: 550,
      enhanced: '5.1.1',
      text: '<x@example.org>: Recipient address rejected',
      remoteMta: 'mx.example.org',
      fromServer: true,
    });
    assert.deepEqual(parseReply('452-4.2.2 The email account that you tried to reach is over quota.\r\n452 4.2.2 Please direct the recipient to the help page'), {
      code: 452,
      enhanced: '4.2.2',
      text: 'The email account that you tried to reach is over quota. Please direct the recipient to the help page',
      fromServer: true,
    });
    assert.deepEqual(parseReply('421 Service not available'), { code: 421, text: 'Service not available', fromServer: true });
    const garbled = parseReply('connection reset');
    assert.equal(garbled.code, 0);
    assert.equal(garbled.fromServer, undefined, 'text that is no reply is not claimed as one');
  });

  it('formats a reply the way the queue stores it', () => {
    assert.equal(formatReply({ code: 451, enhanced: '4.4.1', text: 'no answer' }), '451 4.4.1 no answer');
    assert.equal(formatReply({ code: 250, text: 'ok' }), '250 ok');
  });
});
