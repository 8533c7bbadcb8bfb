import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ChildPetrel } from './harness/child-petrel.js';
import { runProcess } from './harness/run-process.js';
import { SmtpTestClient } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { PETREL_CLI, REPO_ROOT } from './fixtures/petrel-process.js';

const NOBODY = { user: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 };
const PASSWORD = 'correct horse battery';

/** Everything under `dir` (not `dir` itself) that is not owned by `uid`, with its owner. */
function notOwnedBy(dir: string, uid: number): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stats = lstatSync(path);
    const own = stats.uid === uid ? [] : [`${path} (uid ${stats.uid})`];
    return stats.isDirectory() ? [...own, ...notOwnedBy(path, uid)] : own;
  });
}

/**
 * An operator runs `petrel user`, `petrel dkim keygen` and `petrel queue` as
 * root on a server that runs as nobody: what they make in the data directory
 * is nobody's, so the server can read and change it afterwards (before, a
 * users file, a DKIM key or the queue's directories made by root locked the
 * server out of them).
 */
describe('operator commands run as root leave the data directory to the server user', () => {
  const temp = tempDir();
  const dataDir = join(temp.path, 'data');
  const config = {
    server: { hostname: 'mx.petrel.test', dataDir, localDomains: ['petrel.test'], shutdownTimeout: '5s', user: NOBODY.user, group: NOBODY.group },
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }],
    dns: { reverseLookup: false },
    plugins: [
      { name: 'auth-file' },
      { name: 'relay-access' },
      { name: 'queue-spool' },
      { name: 'routing', options: { local: 'deliver-maildir' } },
      { name: 'deliver-maildir' },
    ],
  };
  let child: ChildPetrel | undefined;

  before(() => {
    assert.equal(process.getuid?.(), 0, 'this test runs the commands as root; run the suite as root (CI does)');
    chmodSync(temp.path, 0o755);
    // As the package's setup leaves it: the data directory is the server user's, and still empty.
    mkdirSync(dataDir, { mode: 0o750 });
    chownSync(dataDir, NOBODY.uid, NOBODY.gid);
  });
  after(async () => {
    await child?.stop();
    temp.remove();
  });

  it('user add, dkim keygen and queue list make nothing of root\'s; the server then reads the users file and queues mail', async () => {
    // Root's config file, readable by all (as /etc/petrel/mta.config.yaml); the commands and the start read it.
    const configFile = join(temp.path, 'mta.config.yaml');
    writeFileSync(configFile, stringify(config), { mode: 0o644 });
    const petrel = (args: string[], input?: string) => runProcess(process.execPath, [PETREL_CLI, ...args, '-c', configFile], { cwd: REPO_ROOT, input });
    for (const [args, input] of [
      [['user', 'add', 'alice@petrel.test', '--password-stdin'], `${PASSWORD}\n`],
      [['dkim', 'keygen', '--domain', 'petrel.test', '--selector', 's1', '--algo', 'ed25519'], undefined],
      [['queue', 'list'], undefined],
      [['queue', 'stats'], undefined],
    ] as const) {
      const run = await petrel([...args], input);
      assert.equal(run.code, 0, `petrel ${args.join(' ')}: ${run.stderr}`);
    }
    assert.ok(readdirSync(dataDir).includes('users'), 'the users file is in the data directory');
    assert.deepEqual(notOwnedBy(dataDir, NOBODY.uid), [], 'everything the commands made is nobody\'s');

    child = await ChildPetrel.startFile(configFile);
    await child.waitForLog((line) => String(line.msg).startsWith('switched to user nobody'));
    const client = await SmtpTestClient.ready(child.port());
    await client.command(`AUTH PLAIN ${Buffer.from(`\0alice@petrel.test\0${PASSWORD}`).toString('base64')}`, /^235 /);
    const reply = await client.sendMail('alice@petrel.test', ['postmaster@petrel.test'], 'Subject: after the operator\r\n\r\nhello\r\n');
    assert.match(reply.raw, /^250 /);
    await client.quit();
  });
});
