import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { testCertificate } from './harness/certificates.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { waitForMail } from './harness/maildir.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * `petrel start` as root: the ports are bound as root, then the process
 * becomes server.user before it serves anything. These tests need root (CI
 * and the development containers run as root) and fail, not skip, without it.
 */

const run = promisify(execFile);
const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');
const CLI = join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js');
const SEND = join(process.cwd(), 'dist', 'test', 'fixtures', 'send-one-message.js');

/** nobody/nogroup: unprivileged accounts every Debian-like system has. */
const NOBODY = { user: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 };

interface ProcessIds {
  readonly uid: number[];
  readonly gid: number[];
  readonly groups: number[];
}

/** Real, effective, saved and file-system ids and the supplementary groups, as the kernel sees them. */
function idsOf(pid: number): ProcessIds {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => (status.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

/** Whether this machine lets us make a network namespace (a container without CAP_SYS_ADMIN does not). */
function canUnshareNetwork(): boolean {
  return spawnSync('unshare', ['-n', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' }).status === 0;
}

/** Runs `petrel start` directly (not through ChildPetrel, which says server.user: root for other tests). */
async function startFails(configFile: string, wrap: string[] = []): Promise<{ code: number; stderr: string }> {
  const [command, ...args] = [...wrap, NODE, CLI, 'start', '-c', configFile];
  const result = await run(command, args, { timeout: 60_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );
  return { code: result.code, stderr: result.stderr };
}

describe('privileges: started as root, Petrel serves mail as server.user', () => {
  const temp = tempDir();
  const children: ChildPetrel[] = [];

  before(() => {
    assert.equal(process.getuid?.(), 0, 'these tests start Petrel as root; run the suite as root (CI does)');
    // nobody must be able to reach the data directories made inside.
    chmodSync(temp.path, 0o755);
  });
  after(async () => {
    for (const child of children) await child.stop();
    temp.remove();
  });

  function config(name: string, overrides: { server?: object; listeners?: object[]; plugins?: object[]; tls?: object } = {}) {
    return {
      server: { hostname: 'mx.petrel.test', dataDir: join(temp.path, name), localDomains: ['petrel.test'], shutdownTimeout: '5s', user: NOBODY.user, group: NOBODY.group, ...overrides.server },
      listeners: overrides.listeners ?? [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      ...(overrides.tls ? { tls: overrides.tls } : {}),
      admin: { host: '127.0.0.1', port: 0 },
      dns: { reverseLookup: false },
      plugins: overrides.plugins ?? [
        { name: 'relay-access' },
        { name: 'queue-spool' },
        { name: 'routing', options: { local: 'deliver-maildir' } },
        { name: 'deliver-maildir' },
      ],
    };
  }

  it('binds port 25 as root (in a network namespace of its own), then runs as nobody; a message is stored owned by nobody', async (t) => {
    const isolated = canUnshareNetwork();
    if (!isolated) t.diagnostic('no network namespace here (unshare -n failed): binding a high port instead of 25');
    const port = isolated ? 25 : 0;
    // `unshare -n` gives Petrel a loopback of its own, so port 25 is free whatever runs on this machine.
    const prefix = isolated ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh'] : [];
    const dataDir = join(temp.path, 'port25');
    // A self-signed certificate is generated before the switch, as the data directory's owner: it belongs to nobody.
    const listeners = [{ name: 'mx', host: '127.0.0.1', port, tls: 'starttls' }];
    const child = await ChildPetrel.start(temp.path, config('port25', { listeners, tls: { selfSigned: true } }), {}, prefix);
    children.push(child);
    await child.waitForLog((line) => String(line.msg).startsWith('switched to user nobody'));
    if (isolated) assert.equal(child.port(), 25);

    const ids = idsOf(child.pid);
    assert.deepEqual(ids.uid, [NOBODY.uid, NOBODY.uid, NOBODY.uid, NOBODY.uid], 'real, effective, saved and fs uid are nobody');
    assert.deepEqual(ids.gid, [NOBODY.gid, NOBODY.gid, NOBODY.gid, NOBODY.gid], 'every gid is nogroup');
    assert.ok(!ids.groups.includes(0), `no supplementary group of root is kept (${ids.groups.join(' ')})`);

    const reply = isolated
      ? (await run('nsenter', ['-t', String(child.pid), '-n', NODE, SEND, '25', 'someone@example.org', 'postmaster@petrel.test'])).stdout.trim()
      : (await sendLocally(child.port(), 'someone@example.org', 'postmaster@petrel.test'));
    assert.match(reply, /^250 2\.0\.0 Ok: queued as /);

    const maildir = join(dataDir, 'maildir', 'postmaster');
    await waitForMail(maildir);
    const [file] = readdirSync(join(maildir, 'new'));
    for (const path of [dataDir, join(dataDir, 'queue'), join(dataDir, 'control.sock'), join(dataDir, 'tls', 'self-signed.key'), maildir, join(maildir, 'new', file)]) {
      const stats = statSync(path);
      assert.equal(stats.uid, NOBODY.uid, `${path} belongs to nobody`);
    }
  });

  it('with server.workers: 2 every worker binds the port as root and serves as nobody, a worker started again too; the primary stays root', async (t) => {
    const isolated = canUnshareNetwork();
    if (!isolated) t.diagnostic('no network namespace here (unshare -n failed): binding a high port instead of 25');
    const prefix = isolated ? ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh'] : [];
    const listeners = [{ name: 'mx', host: '127.0.0.1', port: isolated ? 25 : 0, tls: 'none' }];
    const dataDir = join(temp.path, 'workers');
    const child = ChildPetrel.launch(temp.path, config('workers', { server: { workers: 2 }, listeners }), { prefix });
    children.push(child);
    await child.waitForLog((line) => line.msg === 'accepting connections', 1, 90_000);
    const workerPid = (index: number) => child.logLines.findLast((line) => line.msg === `worker ${index} accepting connections`)?.pid as number;
    const nobodyIds = [NOBODY.uid, NOBODY.uid, NOBODY.uid, NOBODY.uid];
    assert.deepEqual(idsOf(child.pid).uid, [0, 0, 0, 0], 'the primary stays root, to start workers that bind the port');
    for (const index of [0, 1]) assert.deepEqual(idsOf(workerPid(index)).uid, nobodyIds, `worker ${index} runs as nobody`);

    const killed = workerPid(1);
    process.kill(killed, 'SIGKILL');
    await child.waitForLog((line) => line.msg === 'worker 1 accepting connections' && line.pid !== killed, 1, 60_000);
    assert.deepEqual(idsOf(workerPid(1)).uid, nobodyIds, 'the worker started again bound the port and switched to nobody as well');
    if (isolated) assert.equal(child.port(), 25);
    assert.equal(statSync(join(dataDir, 'queue', 'worker-1')).uid, NOBODY.uid, "worker 1's share of the queue belongs to nobody");
  });

  it('links nobody planted in its data directory lead root nowhere: nothing outside is chowned, read or written', async () => {
    // What a compromised server could leave for root's next start: links in tls/, which root once read, wrote and chowned.
    const outside = (name: string) => {
      const file = join(temp.path, name);
      writeFileSync(file, `${name}: root's own\n`, { mode: 0o600 });
      return file;
    };
    const chowned = outside('chowned-victim');
    const overwritten = outside('overwritten-victim');
    const dataDir = join(temp.path, 'planted');
    mkdirSync(join(dataDir, 'tls'), { recursive: true });
    symlinkSync(chowned, join(dataDir, 'tls', 'planted'));
    const listeners = [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'starttls' }];
    const giveToNobody = () => {
      for (const path of [dataDir, join(dataDir, 'tls'), ...readdirSync(join(dataDir, 'tls')).map((name) => join(dataDir, 'tls', name))]) {
        lchownSync(path, NOBODY.uid, NOBODY.gid);
      }
    };
    giveToNobody();
    const child = await ChildPetrel.start(temp.path, config('planted', { listeners, tls: { selfSigned: true } }));
    children.push(child);
    await child.stop();
    assert.equal(statSync(chowned).uid, 0, 'a file a link in tls/ points to still belongs to root');
    assert.equal(statSync(join(dataDir, 'tls', 'self-signed.key')).uid, NOBODY.uid, 'the certificate made before the switch is nobody\'s');

    // No certificate, and its key a link to a file of root's: root would have written a new key into that file.
    for (const name of ['self-signed.crt', 'self-signed.key']) rmSync(join(dataDir, 'tls', name));
    symlinkSync(overwritten, join(dataDir, 'tls', 'self-signed.key'));
    giveToNobody();
    const file = join(temp.path, 'planted.yaml');
    writeFileSync(file, stringify(config('planted', { listeners, tls: { selfSigned: true } })));
    const refused = await startFails(file);
    assert.equal(refused.code, 77, refused.stderr);
    assert.match(refused.stderr, /EACCES/);
    assert.equal(readFileSync(overwritten, 'utf8'), "overwritten-victim: root's own\n", 'not written through the link');
    assert.equal(statSync(overwritten).uid, 0);
  });

  it('started as root with no server.user, it refuses to run and says why; server.user: root runs it as root', async () => {
    const file = join(temp.path, 'no-user.yaml');
    const { user: _user, group: _group, ...server } = config('no-user').server;
    writeFileSync(file, stringify({ ...config('no-user'), server }));
    const refused = await startFails(file);
    assert.equal(refused.code, 78, 'EX_CONFIG: the config must say who to be');
    assert.match(refused.stderr, /started as root and server\.user is not set: it will not serve mail as root/);
    assert.match(refused.stderr, /server\.user: root" to run as root on purpose/);

    const asRoot = await ChildPetrel.start(temp.path, config('as-root', { server: { user: 'root', group: undefined } }));
    children.push(asRoot);
    assert.equal(idsOf(asRoot.pid).uid[1], 0, 'server.user: root stays root');
    await asRoot.stop();
  });

  it('a data directory that belongs to another user stops the start, naming it, both owners and the chown that fixes it', async () => {
    const dataDir = join(temp.path, 'owned-by-root');
    mkdirSync(dataDir);
    const file = join(temp.path, 'owned-by-root.yaml');
    writeFileSync(file, stringify(config('owned-by-root')));
    const refused = await startFails(file);
    assert.equal(refused.code, 77, 'EX_NOPERM');
    assert.match(refused.stderr, new RegExp(`must belong to nobody \\(uid 65534\\), the user Petrel runs as, but ${dataDir} \\(owned by root, uid 0\\) does not`));
    assert.match(refused.stderr, new RegExp(`fix it with: chown -R nobody:nogroup ${dataDir}`));

    // A file left by a command run as root is found too.
    chownSync(dataDir, NOBODY.uid, NOBODY.gid);
    writeFileSync(join(dataDir, 'users'), '');
    const again = await startFails(file);
    assert.match(again.stderr, new RegExp(`${join(dataDir, 'users')} \\(owned by root, uid 0\\)`));
  });

  it('a data directory reached through a link (/var/lib/petrel -> /srv/petrel) is checked where it leads', async () => {
    const target = join(temp.path, 'srv-petrel');
    mkdirSync(target);
    chownSync(target, NOBODY.uid, NOBODY.gid);
    symlinkSync(target, join(temp.path, 'linked'));
    const child = await ChildPetrel.start(temp.path, config('linked'));
    children.push(child);
    await child.stop();
    assert.equal(statSync(join(target, 'queue')).uid, NOBODY.uid);
  });

  it('started as another user, server.user naming someone else is refused (only root can switch); naming itself checks the data directory', async () => {
    const file = join(temp.path, 'wrong-user.yaml');
    writeFileSync(file, stringify(config('wrong-user', { server: { user: 'daemon', group: undefined } })));
    chmodSync(file, 0o644);
    const refused = await startFails(file, ['setpriv', `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups']);
    assert.equal(refused.code, 77, 'EX_NOPERM');
    assert.match(refused.stderr, /server\.user is daemon \(uid 1\), but Petrel was started as nobody \(uid 65534\) and only root can switch users/);

    // Started as server.user itself (systemd's User=), the data directory's owner is still checked.
    const dataDir = join(temp.path, 'same-user');
    mkdirSync(dataDir);
    const same = join(temp.path, 'same-user.yaml');
    writeFileSync(same, stringify(config('same-user', { server: { user: 'nobody', group: undefined } })));
    chmodSync(same, 0o644);
    const owner = await startFails(same, ['setpriv', `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups']);
    assert.equal(owner.code, 77);
    assert.match(owner.stderr, new RegExp(`must belong to nobody \\(uid 65534\\), the user Petrel runs as, but ${dataDir} \\(owned by root, uid 0\\) does not`));
  });

  it('after the switch a reload reads files as nobody and cannot bind ports again: both are refused with the reason', async () => {
    // A private key only root may read, like /etc/letsencrypt/live/*/privkey.pem.
    const certificate = testCertificate('mx.petrel.test');
    const certFile = join(temp.path, 'public.crt');
    const keyFile = join(temp.path, 'root-only.key');
    writeFileSync(certFile, certificate.cert, { mode: 0o644 });
    writeFileSync(keyFile, certificate.key, { mode: 0o600 });
    const tls = { cert: certFile, key: keyFile };
    const listeners = [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'starttls' }];
    const child = await ChildPetrel.start(temp.path, config('reload', { tls, listeners }));
    children.push(child);
    await child.waitForLog((line) => String(line.msg).startsWith('switched to user nobody'));
    const client = await SmtpTestClient.ready(child.port());
    await client.startTls();
    await client.quit();
    // The admin port was bound before the switch too, and answers after it.
    const admin = child.logLines.find((line) => String(line.msg).startsWith('admin API listening'));
    assert.equal((await fetch(`http://127.0.0.1:${String(admin?.port)}/health`)).status, 200);

    const rewrite = (changes: Parameters<typeof config>[1]) => writeFileSync(child.configFile, stringify(config('reload', { tls, listeners, ...changes })));
    const refusals = () => child.logLines.filter((line) => String(line.msg).startsWith('reload refused')).map((line) => String(line.msg));

    rewrite({ listeners: [{ name: 'mx', host: '127.0.0.1', port: 25, tls: 'starttls' }] });
    child.kill('SIGHUP');
    await child.waitForLog((line) => String(line.msg).startsWith('reload refused'), 1);
    assert.match(refusals()[0], /listeners: changing this needs a restart: Petrel runs as nobody now and cannot bind ports again as root/);

    rewrite({ plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }] });
    child.kill('SIGHUP');
    await child.waitForLog((line) => String(line.msg).startsWith('reload refused'), 2);
    assert.match(refusals()[1], /cannot read TLS files .*root-only\.key: EACCES: permission denied/);
    assert.match(refusals()[1], /a reload reads files as nobody: make them readable by it/);

    chownSync(keyFile, NOBODY.uid, NOBODY.gid);
    child.kill('SIGHUP');
    await child.waitForLog((line) => line.msg === 'configuration reloaded');
  });
});

async function sendLocally(port: number, from: string, to: string): Promise<string> {
  const client = await SmtpTestClient.ready(port);
  const reply = await client.sendMail(from, [to], sampleMessage());
  await client.quit();
  return reply.raw;
}
