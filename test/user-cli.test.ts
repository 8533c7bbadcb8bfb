import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyPassword } from '../plugins/auth-file/password-hash.js';
import { parseUsers } from '../plugins/auth-file/users-file.js';
import { PETREL_CLI, REPO_ROOT } from './fixtures/petrel-process.js';
import { runProcess, type ProcessRun } from './harness/run-process.js';
import { tempDir } from './harness/temp-dir.js';

function petrel(args: string[], input?: string): Promise<ProcessRun> {
  return runProcess(process.execPath, [PETREL_CLI, ...args], { cwd: REPO_ROOT, input });
}

describe('petrel user', () => {
  const dir = tempDir('petrel-user-cli-');
  const config = join(dir.path, 'mta.config.yaml');
  const usersFile = join(dir.path, 'data', 'users');

  before(() => {
    writeFileSync(
      config,
      [
        'server: { hostname: mx.petrel.test, dataDir: ./data, localDomains: [localhost] }',
        'listeners: [{ name: mx, port: 0, tls: none }]',
        'plugins:',
        '  - name: auth-file',
        '  - name: relay-access',
        '  - name: queue-spool',
        '',
      ].join('\n'),
    );
  });
  after(() => dir.remove());

  it('adds a user to the users file under dataDir with a verifiable scrypt hash', async () => {
    const run = await petrel(['user', 'add', 'Alice@Localhost', '--password-stdin', '-c', config], 'correct horse battery\n');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `added alice@localhost (${usersFile})`);
    const users = parseUsers(readFileSync(usersFile, 'utf8'), usersFile);
    const hash = users.get('alice@localhost') as string;
    assert.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$/);
    assert.equal(await verifyPassword('correct horse battery', hash), true);
    assert.equal(await verifyPassword('wrong', hash), false);
    assert.equal(statSync(usersFile).mode & 0o777, 0o640, 'not readable by everyone');
  });

  it('refuses to add a user twice, a short password and a login with a colon', async () => {
    const twice = await petrel(['user', 'add', 'alice@localhost', '--password-stdin', '-c', config], 'another password\n');
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /alice@localhost exists already \(use petrel user passwd alice@localhost\)/);
    const short = await petrel(['user', 'add', 'bob@localhost', '--password-stdin', '-c', config], 'short\n');
    assert.equal(short.code, 1);
    assert.match(short.stderr, /at least 8 characters/);
    const colon = await petrel(['user', 'add', 'bob:x', '--password-stdin', '-c', config], 'long enough password\n');
    assert.equal(colon.code, 64, 'a login that cannot be stored is a usage error');
    assert.match(colon.stderr, /must not contain spaces, ":"/);
  });

  it('without a terminal and without --password-stdin, says how to pass the password', async () => {
    const run = await petrel(['user', 'add', 'bob@localhost', '-c', config]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /--password-stdin/);
  });

  it('changes a password, lists and removes users', async () => {
    assert.equal((await petrel(['user', 'add', 'bob@localhost', '--password-stdin', '-c', config], 'bob first password\n')).code, 0);
    const changed = await petrel(['user', 'passwd', 'bob@localhost', '--password-stdin', '-c', config], 'bob second password\n');
    assert.equal(changed.code, 0, changed.stderr);
    const hash = parseUsers(readFileSync(usersFile, 'utf8'), usersFile).get('bob@localhost') as string;
    assert.equal(await verifyPassword('bob second password', hash), true);

    const list = await petrel(['user', 'list', '-c', config]);
    assert.deepEqual(list.stdout.trim().split('\n'), ['alice@localhost', 'bob@localhost']);

    assert.equal((await petrel(['user', 'remove', 'bob@localhost', '-c', config])).code, 0);
    const missing = await petrel(['user', 'passwd', 'bob@localhost', '--password-stdin', '-c', config], 'whatever password\n');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no user bob@localhost/);
    assert.equal((await petrel(['user', 'list', '-c', config])).stdout.trim(), 'alice@localhost');
  });

  it('works on a file named with --users-file, and explains a config without auth-file', async () => {
    const other = join(dir.path, 'other.yaml');
    writeFileSync(other, 'listeners: [{ name: mx, port: 0, tls: none }]\nplugins: [{ name: queue-spool }]\n');
    const refused = await petrel(['user', 'list', '-c', other]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /enables no auth-file plugin; name the file with --users-file/);
    const file = join(dir.path, 'elsewhere', 'users');
    const added = await petrel(['user', 'add', 'carol', '--password-stdin', '--users-file', file], 'carol password\n');
    assert.equal(added.code, 0, added.stderr);
    assert.ok(parseUsers(readFileSync(file, 'utf8'), file).has('carol'));
  });

  it('says what is wrong with the command line, shows the usage and exits 64 (EX_USAGE)', async () => {
    const missing = await petrel(['user', '-c', config]);
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /^petrel: which user command\?\nusage: petrel user add\|passwd LOGIN/);
    const unknown = await petrel(['user', 'frobnicate', '-c', config]);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /^petrel: unknown user command "frobnicate"\nusage: petrel user add\|passwd LOGIN/);
    const noLogin = await petrel(['user', 'add', '-c', config]);
    assert.equal(noLogin.code, 64);
    assert.match(noLogin.stderr, /^petrel: user add: the LOGIN is missing\n/);
  });
});
