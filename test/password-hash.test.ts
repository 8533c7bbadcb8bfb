import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashPassword, hashProblem, verifyPassword } from '../plugins/auth-file/password-hash.js';
import { formatUsers, parseUsers } from '../plugins/auth-file/users-file.js';

const CHEAP = { ln: 10, r: 8, p: 1 };

describe('password hashes', () => {
  it('verifies the right password only, with a fresh salt each time', async () => {
    const first = await hashPassword('pässword', CHEAP);
    const second = await hashPassword('pässword', CHEAP);
    assert.notEqual(first, second);
    assert.match(first, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await verifyPassword('pässword', first), true);
    assert.equal(await verifyPassword('pa\u0308ssword', first), true, 'Unicode normalisation: the same password typed differently');
    assert.equal(await verifyPassword('password', first), false);
  });

  it('refuses malformed hashes and costs outside sane bounds', async () => {
    for (const bad of ['', 'plain', '$2y$10$bcrypt', '$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5', '$scrypt$ln=15,r=8,p=1$$']) {
      assert.ok(hashProblem(bad), bad);
      assert.equal(await verifyPassword('x', bad), false);
    }
  });
});

describe('users file', () => {
  it('parses logins case-insensitively and skips comments', async () => {
    const hash = await hashPassword('secret password', CHEAP);
    const users = parseUsers(`# users\n\nAlice@Example.ORG:${hash}\n  bob:${hash}  \n`, 'users');
    assert.deepEqual([...users.keys()], ['alice@example.org', 'bob']);
    assert.deepEqual(parseUsers(formatUsers(users), 'users'), users, 'format and parse round-trip');
  });

  it('names file and line of a bad entry', async () => {
    const hash = await hashPassword('secret password', CHEAP);
    assert.throws(() => parseUsers(`a:${hash}\nb\n`, '/etc/petrel/users'), /^Error: \/etc\/petrel\/users:2: expected login:hash$/);
    assert.throws(() => parseUsers(`a:${hash}\nA:${hash}\n`, 'users'), /users:2: login a is listed twice/);
    assert.throws(() => parseUsers('a:nothash\n', 'users'), /users:1: expected an scrypt hash/);
  });
});
