import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { hideUrlPassword, redact } from '../core/admin/redact.js';

/**
 * What /api/config and start-up errors show of a URL with credentials: the
 * password never, in any spelling ioredis accepts. ioredis (like the URL
 * parsers) takes the last `@` before the host as the end of the userinfo,
 * so a password or user name with a bare `@` works, and must be hidden whole.
 */
describe('redact', () => {
  const cases: [url: string, shown: string][] = [
    ['redis://:secret@127.0.0.1:6379', 'redis://:[redacted]@127.0.0.1:6379'],
    ['redis://default:secret@127.0.0.1:6379/0', 'redis://default:[redacted]@127.0.0.1:6379/0'],
    ['redis://:p@ss@127.0.0.1:6379', 'redis://:[redacted]@127.0.0.1:6379'],
    ['redis://:a@b@c@127.0.0.1:6379/0?db=1', 'redis://:[redacted]@127.0.0.1:6379/0?db=1'],
    ['rediss://ops@example.org:pw@redis.example.org:6380', 'rediss://ops@example.org:[redacted]@redis.example.org:6380'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://user@127.0.0.1:6379', 'redis://user@127.0.0.1:6379'],
  ];

  for (const [url, shown] of cases) {
    it(`shows ${url} as ${shown}`, () => {
      assert.equal(hideUrlPassword(url), shown);
      assert.deepEqual(redact({ redis: { url } }), { redis: { url: shown } });
      // The password as ioredis reads it from this URL is nowhere in what is shown.
      const password = new Redis(url, { lazyConnect: true }).options.password;
      if (password) assert.ok(!shown.includes(password), `${password} is hidden`);
    });
  }
});
