import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authservIdOf, receivedSpfClaims, splitHeaderFields } from '../plugins/mailauth/trace-headers.js';

describe('trace headers', () => {
  it('finds the authserv-id of an Authentication-Results value (RFC 8601 2.2)', () => {
    assert.equal(authservIdOf('mx.example.org; spf=pass'), 'mx.example.org');
    assert.equal(authservIdOf('  MX.Example.ORG 1; none'), 'mx.example.org');
    assert.equal(authservIdOf('(comment (nested)) mx.example.org;dkim=pass'), 'mx.example.org');
    assert.equal(authservIdOf('"mx.example.org"; spf=pass'), 'mx.example.org');
    assert.equal(authservIdOf('mx.example.org(comment); none'), 'mx.example.org');
    assert.equal(authservIdOf(''), undefined);
    assert.equal(authservIdOf('; spf=pass'), undefined);
  });

  it('recognises a Received-SPF written in a receiver\'s name', () => {
    assert.ok(receivedSpfClaims('pass (mx.example.org: domain of a@b designates 1.2.3.4 as permitted sender)', 'mx.example.org'));
    assert.ok(receivedSpfClaims('fail client-ip=1.2.3.4; receiver=MX.example.org; helo=x', 'mx.example.org'));
    assert.ok(!receivedSpfClaims('pass (other.example: domain of a@b designates 1.2.3.4)', 'mx.example.org'));
    assert.ok(!receivedSpfClaims('pass receiver=mx.example.org.evil.example', 'mx.example.org'));
  });

  it('splits a block of folded fields', () => {
    assert.deepEqual(splitHeaderFields('A-R: one;\r\n two\r\nReceived-SPF: x\r\n'), [
      { name: 'A-R', value: 'one;\r\n two' },
      { name: 'Received-SPF', value: 'x' },
    ]);
  });
});
