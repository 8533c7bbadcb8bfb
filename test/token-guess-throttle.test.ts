import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TOKEN_GUESS_WINDOW_MS, TOKEN_GUESSES_PER_WINDOW, TokenGuessThrottle } from '../core/admin/token-guess-throttle.js';

/** The admin token's guessing limit on its own, on a clock the test moves (console.test.ts has it over HTTP). */
describe('TokenGuessThrottle', () => {
  it('makes an address wait after too many wrong tokens, until its window ends', () => {
    let now = 1_000_000;
    const throttle = new TokenGuessThrottle(() => now);
    for (let i = 0; i < TOKEN_GUESSES_PER_WINDOW - 1; i++) throttle.wrong('192.0.2.7');
    assert.equal(throttle.waitSeconds('192.0.2.7'), undefined, 'one guess left');
    throttle.wrong('192.0.2.7');
    assert.equal(throttle.waitSeconds('192.0.2.7'), TOKEN_GUESS_WINDOW_MS / 1000);
    assert.equal(throttle.waitSeconds('::ffff:192.0.2.7'), TOKEN_GUESS_WINDOW_MS / 1000, 'the same client over an IPv4-mapped address');
    assert.equal(throttle.waitSeconds('192.0.2.8'), undefined, 'another address may try');
    now += TOKEN_GUESS_WINDOW_MS;
    assert.equal(throttle.waitSeconds('192.0.2.7'), undefined, 'a new window');
  });

  it('counts an IPv6 client by its /64, and forgets a typo once the right token comes', () => {
    const throttle = new TokenGuessThrottle(() => 0);
    for (let i = 0; i < TOKEN_GUESSES_PER_WINDOW; i++) throttle.wrong(`2001:db8:1:2::${i + 1}`);
    assert.ok(throttle.waitSeconds('2001:db8:1:2:ffff::9') !== undefined, 'rotating addresses inside a /64 does not help');
    assert.equal(throttle.waitSeconds('2001:db8:1:3::1'), undefined);
    throttle.wrong('198.51.100.1');
    throttle.right('198.51.100.1');
    for (let i = 0; i < TOKEN_GUESSES_PER_WINDOW - 1; i++) throttle.wrong('198.51.100.1');
    assert.equal(throttle.waitSeconds('198.51.100.1'), undefined, 'the typo before the right token no longer counts');
  });
});
