import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionEvent } from '../core/trace/trace-event.js';
import { filterFromQuery } from '../core/trace/trace-filter.js';
import { TraceHub } from '../core/trace/trace-hub.js';
import type { TraceSubject } from '../core/trace/trace-subject.js';
import { redactCommand } from '../core/trace/command-redaction.js';

function subject(fields: Partial<TraceSubject> = {}): TraceSubject {
  return { side: 'server', conn: 's1', remote: '127.0.0.2', listener: 'mx', senders: [], recipients: [], ...fields };
}

function line(text: string, conn = 's1'): SessionEvent {
  return { kind: 'line', at: 1, side: 'server', conn, dir: 'in', text };
}

describe('trace watchers', () => {
  it('cost nothing to sessions while nobody watches: the hub says so with one boolean per side', () => {
    const hub = new TraceHub();
    assert.equal(hub.serverWatched, false);
    const watcher = hub.watch(filterFromQuery('server', new URLSearchParams()));
    assert.equal(hub.serverWatched, true);
    assert.equal(hub.clientWatched, false);
    hub.unwatch(watcher);
    assert.equal(hub.serverWatched, false);
  });

  it('drop what does not fit, count it, and tell the reader where, in order', () => {
    const hub = new TraceHub();
    const watcher = hub.watch(filterFromQuery('server', new URLSearchParams()), 10);
    for (let i = 0; i < 25; i++) hub.publish(line(`C: ${i}`), subject());
    assert.equal(watcher.queued, 10);
    assert.equal(watcher.lost, 15);
    const first = watcher.take(100);
    assert.deepEqual(first.map((e) => (e.kind === 'line' ? e.text : `lost ${e.kind === 'lost' ? e.count : ''}`)), [...Array.from({ length: 10 }, (_, i) => `C: ${i}`), 'lost 15']);
    hub.publish(line('C: later'), subject());
    assert.deepEqual(watcher.take(100).map((e) => (e.kind === 'line' ? e.text : e.kind)), ['C: later']);
  });

  it('filter by client network, and hold a session back until its envelope matches', () => {
    const hub = new TraceHub();
    const byNetwork = hub.watch(filterFromQuery('server', new URLSearchParams('source=127.0.0.2/32')));
    const bySender = hub.watch(filterFromQuery('server', new URLSearchParams('sender=A@Example.org')));
    const other = subject({ conn: 's2', remote: '127.0.0.3' });
    hub.publish(line('EHLO other', 's2'), other);
    const traced = subject({ senders: [] });
    hub.publish(line('EHLO traced'), traced);
    assert.deepEqual(byNetwork.take(10).map((e) => (e.kind === 'line' ? e.text : e.kind)), ['EHLO traced']);
    assert.equal(bySender.queued, 0, 'no sender yet: held back');
    const withSender = { ...traced, senders: ['a@example.org'] };
    hub.publish(line('MAIL FROM:<a@example.org>'), withSender);
    assert.deepEqual(bySender.take(10).map((e) => (e.kind === 'line' ? e.text : e.kind)), ['EHLO traced', 'MAIL FROM:<a@example.org>']);
  });

  it('end an only-one trace when its session closes', () => {
    const hub = new TraceHub();
    const watcher = hub.watch(filterFromQuery('server', new URLSearchParams('onlyOne=1')));
    hub.publish(line('QUIT'), subject());
    hub.publish({ kind: 'close', at: 2, side: 'server', conn: 's1' }, subject());
    hub.publish(line('EHLO next', 's9'), subject({ conn: 's9' }));
    assert.equal(watcher.done, false, 'until read');
    assert.deepEqual(watcher.take(10).map((e) => e.kind), ['line', 'close']);
    assert.equal(watcher.done, true);
  });

  it('never show credentials', () => {
    assert.equal(redactCommand('AUTH PLAIN AGFsaWNlAHB3', false), 'AUTH PLAIN ***');
    assert.equal(redactCommand('AUTH LOGIN YWxpY2U=', false), 'AUTH LOGIN ***');
    assert.equal(redactCommand('AUTH LOGIN', false), 'AUTH LOGIN');
    assert.equal(redactCommand('cGFzc3dvcmQ=', true), '***');
    assert.equal(redactCommand('XCLIENT ADDR=192.0.2.1 LOGIN=alice NAME=host.example', false), 'XCLIENT ADDR=192.0.2.1 LOGIN=*** NAME=host.example');
    assert.equal(redactCommand('MAIL FROM:<a@example.org>', false), 'MAIL FROM:<a@example.org>');
  });
});
