import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { tempDir } from './harness/temp-dir.js';

/** What every `petrel` command shares: usage errors, exit statuses, output into a closed pipe. */
describe('the petrel command line', () => {
  const temp = tempDir('petrel-cli-');
  after(() => temp.remove());
  const configFile = join(temp.path, 'mta.config.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      server: { dataDir: join(temp.path, 'data'), localDomains: ['localhost'] },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }],
    }),
  );

  async function petrel(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [PETREL_CLI, ...args]);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  it('says what was wrong, shows the usage and exits 64 (EX_USAGE) for every kind of usage error', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^petrel: which command\? \(petrel --help lists them\)\nusage: petrel <command>/],
      [['frobnicate'], /^petrel: unknown command "frobnicate"\nusage: petrel <command>/],
      [['queue', '--no-such-option'], /^petrel: Unknown option '--no-such-option'.*\nusage: petrel <command>/s],
      [['queue', '-c', configFile], /^petrel: which queue command\?\nusage: petrel queue list\|show ID/],
      [['queue', 'frobnicate', '-c', configFile], /^petrel: unknown queue command "frobnicate"\nusage: petrel queue /],
      [['queue', 'show', '-c', configFile], /^petrel: queue show: the message ID is missing\nusage: petrel queue /],
      [['queue', 'list', '--state', 'lost', '-c', configFile], /^petrel: unknown state "lost" \(one of active, deferred, held\)\nusage: petrel queue /],
      [['user', 'frobnicate', '-c', configFile], /^petrel: unknown user command "frobnicate"\nusage: petrel user /],
      [['limits', 'frobnicate', '-c', configFile], /^petrel: unknown limits command "frobnicate"\nusage: petrel limits /],
      [['dkim', 'frobnicate'], /^petrel: unknown dkim command "frobnicate"\nusage: petrel dkim keygen /],
      [['dkim', 'keygen', '--selector', 's1'], /^petrel: dkim keygen: --domain is missing\nusage: petrel dkim keygen /],
      [['dkim', 'keygen', '--domain', 'example.org', '--selector', 's1', '--algo', 'dsa'], /^petrel: dkim keygen: --algo must be rsa, ed25519 or both, not "dsa"\n/],
      [['config', 'frobnicate'], /^petrel: unknown config command "frobnicate"\nusage: petrel config schema/],
    ];
    for (const [args, stderr] of cases) {
      const run = await petrel(...args);
      assert.equal(run.code, 64, `petrel ${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, stderr, `petrel ${args.join(' ')}`);
      assert.equal(run.stdout, '', 'errors go to stderr');
    }
  });

  it('help is not an error', async () => {
    for (const args of [['help'], ['--help'], ['-h']]) {
      const run = await petrel(...args);
      assert.equal(run.code, 0);
      assert.match(run.stdout, /^usage: petrel <command>/);
      assert.match(run.stdout, /exit status: 0 done, 1 .*64 usage error,\n78 config error/);
    }
  });

  it('a reader that goes away (petrel queue list | head) ends the output quietly, not with an EPIPE crash', async () => {
    const child = spawn(process.execPath, [PETREL_CLI, 'queue', 'list', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Nobody reads: the pipe is closed before the command writes its first line.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});
