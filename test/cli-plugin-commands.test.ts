import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { runProcess, type ProcessRun } from './harness/run-process.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * Plugins bring their commands to the CLI: a plugin the config names by
 * path offers `petrel hello`, listed by --help under its name, run with its
 * options and its instance; the core's own command names stay the core's.
 */

const temp = tempDir();
after(() => temp.remove());

function config(name: string, greeter: Record<string, unknown>): string {
  const file = join(temp.path, name);
  writeFileSync(
    file,
    [
      'server: { hostname: mx.petrel.test, dataDir: ./data, localDomains: [localhost] }',
      'listeners: [{ name: mx, port: 0, tls: none }]',
      'plugins:',
      `  - ${JSON.stringify({ path: fixturePlugin('greeter'), ...greeter })}`,
      '  - name: relay-access',
      '  - name: queue-spool',
      '',
    ].join('\n'),
  );
  return file;
}

function petrel(...args: string[]): Promise<ProcessRun> {
  return runProcess(process.execPath, [PETREL_CLI, ...args], { cwd: temp.path });
}

describe('commands that plugins add to petrel', () => {
  const enabled = config('enabled.yaml', { options: { greeting: 'ahoy' } });
  const disabled = config('disabled.yaml', { enabled: false });

  it('--help lists them under their plugin, and says what it ignored', async () => {
    const help = await petrel('--help', '-c', enabled);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^ {2}greeter\n {4}hello NAME \[--shout\]\n {25}greets NAME with the configured greeting$/m);
    assert.match(help.stdout, /^ {2}auth-file \(not enabled in .*enabled\.yaml\)\n {4}user add\|passwd/m);
    assert.match(help.stdout, /^note: plugin greeter: command start is one of Petrel's own and is ignored$/m);
    const off = await petrel('--help', '-c', disabled);
    assert.match(off.stdout, /^ {2}greeter \(not enabled in .*disabled\.yaml\)\n {4}hello /m);
  });

  it('runs one with its arguments, its options and the plugin instance the config makes', async () => {
    assert.deepEqual(await petrel('hello', 'world', '-c', enabled), { code: 0, stdout: 'ahoy, world\n', stderr: '' });
    assert.deepEqual(await petrel('-c', enabled, 'hello', '--shout', 'world'), { code: 0, stdout: 'AHOY, WORLD\n', stderr: '' });
    const notEnabled = await petrel('hello', 'world', '-c', disabled);
    assert.equal(notEnabled.code, 1);
    assert.match(notEnabled.stderr, /^petrel hello: greeter is not enabled in .*disabled\.yaml$/m);
  });

  it('answers misuse with the usage, and help for the command with --help', async () => {
    const missing = await petrel('hello', '-c', enabled);
    assert.equal(missing.code, 64);
    assert.equal(missing.stderr, 'petrel: hello: whom?\nusage: petrel hello NAME [--shout]\n');
    const unknownOption = await petrel('hello', 'world', '--loud', '-c', enabled);
    assert.equal(unknownOption.code, 64);
    assert.match(unknownOption.stderr, /^petrel: Unknown option '--loud'/);
    assert.match(unknownOption.stderr, /^usage: petrel hello NAME \[--shout\]$/m);
    const help = await petrel('hello', '--help', '-c', enabled);
    assert.equal(help.stdout, 'usage: petrel hello NAME [--shout]\ngreets NAME with the configured greeting (from the greeter plugin)\n');
  });

  it('knows a plugin command only when the config names the plugin; the core keeps its own names', async () => {
    const elsewhere = await petrel('hello', 'world', '-c', join(temp.path, 'missing.yaml'));
    assert.equal(elsewhere.code, 64);
    assert.match(elsewhere.stderr, /^petrel: unknown command "hello"\nusage: petrel <command>/);
    const typo = await petrel('hllo', 'world', '-c', enabled);
    assert.match(typo.stderr, /^petrel: unknown command "hllo": did you mean hello\?\nusage: petrel <command>/);
    const start = await petrel('start', '-c', join(temp.path, 'missing.yaml'));
    assert.equal(start.code, 78, 'the core start, failing on the missing config, not the plugin command (exit 99)');
    assert.match(start.stderr, /missing\.yaml: cannot read config: file not found/);
  });
});
