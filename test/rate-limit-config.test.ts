import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfigText } from '../core/config/load.js';
import { createLogger } from '../core/log/logger.js';
import { Petrel } from '../core/petrel.js';
import RateLimit from '../plugins/rate-limit/index.js';
import { configProblems } from './harness/config-problems.js';
import { tempDir } from './harness/temp-dir.js';

/** Rule and option mistakes stop the boot with a message at the line of the mistake. */

const temp = tempDir();
after(() => temp.remove());

function configWith(pluginOptions: string, top = ''): string {
  return `server:
  dataDir: ./data
  localDomains: [example.test]
listeners:
  - name: mx
    host: 127.0.0.1
    port: 2525
    tls: none
${top}plugins:
  - name: rate-limit
    options:
${pluginOptions}
  - name: relay-access
  - name: queue-spool
`;
}

const problems = (text: string) => configProblems(text, join(temp.path, 'mta.config.yaml'));

describe('rate-limit configuration errors', () => {
  it('store: redis without a redis: section says what to add', async () => {
    const message = await problems(configWith(`      store: redis
      rules:
        - { count: messages, key: sender, limit: 10, window: 1m }`));
    assert.match(message, /mta\.config\.yaml:10:\d+ plugins\[0\]: plugin rate-limit could not be constructed: options\.store is redis, but the config has no redis: section; add one \(redis: \{ url: redis:\/\/127\.0\.0\.1:6379 \}\) or use store: memory/);
  });

  it('store: redis with a redis: section is accepted (no connection is made by building)', async () => {
    const text = configWith(`      store: redis
      rules:
        - { count: messages, key: sender, limit: 10, window: 1m }`, 'redis:\n  url: redis://127.0.0.1:1\n');
    const petrel = await Petrel.build({ config: parseConfigText(text, join(temp.path, 'ok.yaml'), {}), logger: createLogger({ level: 'silent' }) });
    assert.deepEqual(petrel.plugins.plugins.map((p) => p.name), ['rate-limit', 'relay-access', 'queue-spool']);
    await petrel.stop();
  });

  it('a key the count cannot be kept per', async () => {
    const message = await problems(configWith(`      rules:
        - count: connections
          key: sender
          limit: 10
          window: 1m`));
    assert.match(message, /mta\.config\.yaml:14:16 plugins\[0\]\.options\.rules\[0\]\.key: plugin rate-limit: connections can be counted per ip, network, helo, user, listener; not per sender/);
  });

  it('a missing window, and a window on a concurrent rule', async () => {
    const message = await problems(configWith(`      rules:
        - { count: messages, key: sender, limit: 10 }
        - { count: concurrent, key: ip, limit: 5, window: 1m }`));
    assert.match(message, /rules\[0\]\.window: plugin rate-limit: a messages rule needs a window like 1m, 1h or 1d/);
    assert.match(message, /:14:\d+ plugins\[0\]\.options\.rules\[1\]\.window: plugin rate-limit: concurrent counts connections open at once and takes no window/);
  });

  it('a limit that is not a whole number, or not a size for bytes', async () => {
    const message = await problems(configWith(`      rules:
        - { count: messages, key: sender, limit: 2.5, window: 1m }
        - { count: bytes, key: user, limit: lots, window: 1d }
        - { count: bytes, key: sender, limit: 100MiB, window: 1d }`));
    assert.match(message, /rules\[0\]\.limit: plugin rate-limit: expected a whole number of at least 1, found 2\.5/);
    assert.match(message, /rules\[1\]\.limit: plugin rate-limit: expected a size like 100MiB or a number of bytes, found "lots"/);
    assert.doesNotMatch(message, /rules\[2\]/);
  });

  it('two rules with the same name', async () => {
    const message = await problems(configWith(`      rules:
        - { count: messages, key: sender, limit: 10, window: 1m }
        - { count: messages, key: sender, limit: 100, window: 1h }`));
    assert.match(message, /:14:\d+ plugins\[0\]\.options\.rules\[1\]\.name: plugin rate-limit: two rules are named "messages-per-sender" \(also rules\[0\]\); give each its own name/);
  });

  it('an unknown key kind and a misspelt field', async () => {
    const message = await problems(configWith(`      rules:
        - { count: messages, key: mailbox, limit: 1, window: 1m, windw: 1m }`));
    assert.match(message, /rules\[0\]\.key: plugin rate-limit: expected one of "ip", "network", .*found "mailbox"/);
    assert.match(message, /rules\[0\]\.windw: plugin rate-limit: unknown key "windw"/);
  });

  it('a listener that does not exist', async () => {
    const message = await problems(configWith(`      rules:
        - { count: concurrent, key: ip, limit: 5, listeners: [submission] }`));
    assert.match(message, /plugin rate-limit could not be constructed: rule concurrent-per-ip: listeners: there is no listener named "submission" \(listeners: mx\)/);
  });

  it('an exempt entry that is not a network', async () => {
    const message = await problems(configWith(`      exempt: [10.0.0.0/33]
      rules:
        - { count: concurrent, key: ip, limit: 5 }`));
    assert.match(message, /options\.exempt\[0\]: plugin rate-limit: expected a network like 192\.0\.2\.0\/24/);
  });
});

describe('rate-limit documentation', () => {
  it('every example in docs/rate-limiting.md and the plugin README has valid rate-limit options', () => {
    let examples = 0;
    for (const doc of ['docs/rate-limiting.md', 'plugins/rate-limit/README.md']) {
      const text = readFileSync(join(process.cwd(), doc), 'utf8');
      for (const [, block] of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
        const entries = (parse(block) as { plugins?: { name?: string; options?: unknown }[] }).plugins ?? [];
        for (const entry of entries.filter((e) => e.name === 'rate-limit')) {
          const parsed = RateLimit.options.safeParse(entry.options);
          assert.ok(parsed.success, `${doc}: ${JSON.stringify(parsed.error?.issues)}`);
          examples++;
        }
      }
    }
    assert.ok(examples >= 3, `found ${examples} examples`);
  });
});
