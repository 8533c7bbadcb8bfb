import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HookHandler } from '../core/hooks/catalogue.js';
import { accept, defer, disconnect, next, reject } from '../core/hooks/results.js';

/**
 * The `@ts-expect-error` lines are the real tests: `npm test` compiles this
 * file first, and tsc fails the build if any of them stops being an error.
 * The runtime checks catch the same mistakes from plain JavaScript plugins.
 */
describe('result helpers', () => {
  it('type-check the codes: a 4xx cannot be a rejection, a 5xx cannot be a deferral', () => {
    // @ts-expect-error 450 is a transient code
    assert.throws(() => reject(450, '4.2.1', 'mailbox busy'));
    // @ts-expect-error 550 is a permanent code
    assert.throws(() => defer(550, '5.1.1', 'no such user'));
    // @ts-expect-error the enhanced code's class must match the reply (5.x.x for reject)
    assert.throws(() => reject(550, '4.1.1', 'no such user'));
    // @ts-expect-error 250 is not a refusal
    assert.throws(() => reject(250, '2.0.0', 'ok'));
    // @ts-expect-error the enhanced code is not optional
    assert.throws(() => defer(451, 'try later'));
  });

  it('build replies with the code, enhanced code and text the client will see', () => {
    assert.deepEqual(reject(550, '5.1.1', 'No such user'), { kind: 'reject', reply: { code: 550, enhanced: '5.1.1', text: 'No such user' } });
    assert.deepEqual(defer(451, '4.7.1', 'Greylisted'), { kind: 'defer', reply: { code: 451, enhanced: '4.7.1', text: 'Greylisted' } });
    assert.deepEqual(disconnect(421, '4.7.0', 'Bye'), { kind: 'disconnect', reply: { code: 421, enhanced: '4.7.0', text: 'Bye' } });
    assert.deepEqual(next(), { kind: 'next' });
    assert.deepEqual(accept(), { kind: 'accept' });
  });

  it('never let client-controlled text split a reply into two', () => {
    const result = reject(550, '5.1.1', 'No such user <x>\r\n250 2.0.0 Ok');
    assert.equal(result.reply.text, 'No such user <x> 250 2.0.0 Ok');
  });
});

describe('hook handler types', () => {
  it('give inbound handlers a typed AbortSignal as their last argument, and let handlers leave it out', () => {
    const careful: HookHandler<'rcpt'> = async (_session, _transaction, recipient, signal) => {
      signal.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, 0, recipient.address));
      return signal.aborted ? next() : accept();
    };
    const brief: HookHandler<'connect'> = () => next();
    // @ts-expect-error the last argument is an AbortSignal, not a string
    const wrong: HookHandler<'helo'> = (_session, _helo, signal: string) => (signal ? next() : next());
    const controller = new AbortController();
    assert.equal(typeof careful, 'function');
    assert.deepEqual(brief(undefined as never, controller.signal), next());
    assert.equal(typeof wrong, 'function');
  });
});
