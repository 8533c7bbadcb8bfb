import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseConfigText } from '../core/config/load.js';
import { fixturePlugin } from './fixtures/paths.js';
import { configProblems } from './harness/config-problems.js';
import { tempDir } from './harness/temp-dir.js';

const run = promisify(execFile);
const temp = tempDir();
after(() => temp.remove());

const VALID = `server:
  hostname: mx.example.test
  dataDir: ./data
  localDomains: [example.test]
listeners:
  - name: mx
    host: 127.0.0.1
    port: 2525
    tls: none
plugins:
  - name: relay-access
  - name: queue-spool
`;

/** Loads the text as a config file and builds the plugins; returns the error message. */
const problems = (text: string, env: NodeJS.ProcessEnv = {}) => configProblems(text, join(temp.path, 'mta.config.yaml'), env);

describe('config errors name file, line, column, key, what was found and what was expected', () => {
  it('accepts the valid base config', async () => {
    const loaded = parseConfigText(VALID, 'mta.config.yaml', {});
    assert.equal(loaded.config.listeners[0].port, 2525);
    assert.equal(loaded.config.limits.messageSize, 25 * 1024 * 1024, 'defaults are filled in');
  });

  it('YAML syntax error', async () => {
    const message = await problems(VALID.replace('  hostname: mx.example.test', '  hostname: [mx.example.test'));
    assert.match(message, /mta\.config\.yaml:[23]:\d+: YAML /);
  });

  it('duplicate key', async () => {
    const message = await problems(VALID.replace('  dataDir: ./data', '  dataDir: ./data\n  dataDir: ./other'));
    assert.match(message, /mta\.config\.yaml:4:3: YAML key appears twice/);
  });

  it('unknown key (a typo) with its own line', async () => {
    const message = await problems(VALID.replace('  localDomains: [example.test]', '  localDomians: [example.test]'));
    assert.match(message, /mta\.config\.yaml:4:3 server\.localDomians: unknown key "localDomians": did you mean localDomains\?/);
    const inList = await problems(VALID.replace('    tls: none', '    tls: none\n    greetingDelai: 1s'));
    assert.match(inList, /listeners\[0\]\.greetingDelai: unknown key "greetingDelai": did you mean greetingDelay\?/);
    const unlike = await problems(VALID.replace('  dataDir: ./data', '  dataDir: ./data\n  colour: blue'));
    assert.match(unlike, /server\.colour: unknown key "colour" \(check its spelling; docs\/configuration\.md lists every key\)/);
  });

  it('wrong type, with what was found', async () => {
    const message = await problems(VALID.replace('port: 2525', 'port: twenty-five'));
    assert.match(message, /mta\.config\.yaml:8:11 listeners\[0\]\.port: expected a port number from 0 to 65535, found "twenty-five"/);
  });

  it('value out of range', async () => {
    const message = await problems(VALID.replace('port: 2525', 'port: 70000'));
    assert.match(message, /mta\.config\.yaml:8:11 listeners\[0\]\.port: expected a port number from 0 to 65535, found 70000/);
  });

  it('bad enum value lists the allowed ones', async () => {
    const message = await problems(VALID.replace('tls: none', 'tls: sometimes'));
    assert.match(message, /listeners\[0\]\.tls: expected one of "none", "starttls", "starttls-required", "implicit", found "sometimes"/);
  });

  it('bad duration', async () => {
    const message = await problems(`${VALID}limits:\n  socketTimeout: soon\n`);
    assert.match(message, /:14:18 limits\.socketTimeout: expected a duration like 100ms, 30s, 5m, 4h or 5d, found "soon"/);
  });

  it('dns.servers: an address with a port, not a name', async () => {
    const accepted = parseConfigText(`${VALID}dns:\n  servers: [127.0.0.1:5353, '[::1]:53', 192.0.2.53]\n`, 'mta.config.yaml', {});
    assert.deepEqual(accepted.config.dns.servers, ['127.0.0.1:5353', '[::1]:53', '192.0.2.53']);
    const name = await problems(`${VALID}dns:\n  servers: [127.0.0.1, ns.example.org:53]\n`);
    assert.match(name, /:14:24 dns\.servers\[1\]: expected a name server address like 127\.0\.0\.1, 127\.0\.0\.1:5353 or \[::1\]:53, found "ns\.example\.org:53"/);
    const empty = await problems(`${VALID}dns:\n  servers: []\n`);
    assert.match(empty, /dns\.servers: expected at least one name server, or no `servers` key for the system resolver/);
  });

  it('unknown built-in plugin, suggesting the nearest and listing the built-ins', async () => {
    const message = await problems(VALID.replace('  - name: relay-access', '  - name: relay-acess'));
    assert.match(message, /mta\.config\.yaml:11:5 plugins\[0\]: unknown built-in plugin "relay-acess": did you mean relay-access\? \(built-ins: .*relay-access/);
    const unlike = await problems(VALID.replace('  - name: relay-access', '  - name: quokka-counter'));
    assert.match(unlike, /unknown built-in plugin "quokka-counter" \(built-ins: /, 'no suggestion for a name unlike any built-in');
  });

  it('bad plugin option names the plugin and the key', async () => {
    const message = await problems(VALID.replace('  - name: relay-access', '  - name: relay-access\n    options:\n      relayNetworks: [10.0.0.0/33]'));
    assert.match(message, /:13:23 plugins\[0\]\.options\.relayNetworks\[0\]: plugin relay-access: expected a network like 192\.0\.2\.0\/24/);
  });

  it('unknown plugin option', async () => {
    const message = await problems(VALID.replace('  - name: relay-access', '  - name: relay-access\n    options:\n      relayNetwork: []'));
    assert.match(message, /:13:7 plugins\[0\]\.options\.relayNetwork: plugin relay-access: unknown key "relayNetwork": did you mean relayNetworks\?/);
  });

  it('missing dependency', async () => {
    const message = await problems(`${VALID}  - path: ${fixturePlugin('dependent')}\n`);
    assert.match(message, /plugins\[2\]: plugin "dependent" depends on "greylist-of-dreams", which is not enabled/);
  });

  it('plugin file that does not exist', async () => {
    const message = await problems(`${VALID}  - path: ./nowhere/plugin.js\n`);
    assert.match(message, /plugins\[2\]: plugin file not found: .*nowhere\/plugin\.js/);
  });

  it('no queue plugin', async () => {
    const message = await problems(VALID.replace('  - name: queue-spool\n', ''));
    assert.match(message, /plugins: no queue plugin is enabled/);
  });

  it('missing environment variable, and interpolation when set', async () => {
    const text = VALID.replace('hostname: mx.example.test', 'hostname: ${MX_NAME}').replace('port: 2525', 'port: ${MX_PORT:-2526}');
    const message = await problems(text);
    assert.match(message, /:2:13 server\.hostname: environment variable MX_NAME is not set/);
    const loaded = parseConfigText(text, 'mta.config.yaml', { MX_NAME: 'from-env.example' });
    assert.equal(loaded.config.server.hostname, 'from-env.example');
    assert.equal(loaded.config.listeners[0].port, 2526, 'an unquoted ${VAR} takes the YAML type of its value');
  });

  it('TLS listener without a certificate', async () => {
    const message = await problems(VALID.replace('tls: none', 'tls: starttls'));
    assert.match(message, /listeners\[0\]\.tls: "starttls" needs a certificate/);
  });

  it('a lease shorter than the wait for a destination plus the deliver timeout', async () => {
    const delivering = `${VALID}  - name: deliver-maildir\n`;
    const short = await problems(`${delivering}delivery:\n  leaseTime: 1m\n`);
    assert.match(
      short,
      /mta\.config\.yaml:15:14 delivery\.leaseTime: 1m is too short: a lease must cover the longest wait for a destination \(delivery\.shaping\.maxWait, 30s\) plus the longest delivery \(deliver-maildir: 5m, the default deliver timeout\); expected at least 330s/,
    );
    // The deliver timeout may come from the plugin's entry; the lease is then the default 15m.
    const slowPlugin = await problems(`${delivering}    timeout: 20m\n`);
    assert.match(slowPlugin, /delivery\.leaseTime: 15m is too short: .*\(deliver-maildir: 20m, plugins\[2\]\.timeout\); expected at least 1230s/);
    const slowHook = await problems(`${delivering}hooks:\n  timeouts:\n    deliver: 16m\n`);
    assert.match(slowHook, /\(deliver-maildir: 16m, hooks\.timeouts\.deliver\)/);
    // Long timeouts of plugins that do not deliver do not count, and a lease that covers both is fine.
    parseConfigText(`${delivering}delivery:\n  leaseTime: 330s\n`, 'mta.config.yaml', {});
    await assert.rejects(problems(`${VALID.replace('  - name: relay-access\n', '  - name: relay-access\n    timeout: 20m\n')}  - name: deliver-maildir\n`), /the config was accepted/);
    await assert.rejects(problems(`${delivering}delivery:\n  leaseTime: 330s\n`), /the config was accepted/);
  });

  it('reports several problems at once', async () => {
    const message = await problems(VALID.replace('port: 2525', 'port: x').replace('hostname: mx.example.test', 'hostnam: x'));
    assert.match(message, /configuration has 2 problems/);
  });
});

describe('petrel check-config', () => {
  const node = join(process.cwd(), 'node_modules', '.bin', 'node');
  const cli = join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js');

  it('prints the problem and exits 78 (EX_CONFIG)', async () => {
    const file = join(temp.path, 'broken.yaml');
    writeFileSync(file, VALID.replace('port: 2525', 'port: nope'));
    const result = await run(node, [cli, 'check-config', '-c', file]).catch((error: { code: number; stderr: string }) => error);
    assert.equal((result as { code: number }).code, 78);
    assert.match((result as { stderr: string }).stderr, /broken\.yaml:8:11 listeners\[0\]\.port: expected/);
  });

  it('says ok and exits 0 for a valid config, and the shipped config is valid', async () => {
    const file = join(temp.path, 'good.yaml');
    writeFileSync(file, VALID);
    const good = await run(node, [cli, 'check-config', '-c', file]);
    assert.match(good.stdout, /good\.yaml: ok/);
    const shipped = await run(node, [cli, 'check-config', '-c', join(process.cwd(), 'mta.config.yaml')]);
    assert.match(shipped.stdout, /ok/);
  });
});
