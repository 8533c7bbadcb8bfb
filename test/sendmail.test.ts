import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lchownSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ChildPetrel, runnableAsRoot } from './harness/child-petrel.js';
import { SmallDisk } from './harness/small-disk.js';
import { eventually } from './harness/eventually.js';
import { waitForMail } from './harness/maildir.js';
import { startTestServer } from './harness/test-server.js';
import { tempDir } from './harness/temp-dir.js';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');
const CLI = join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js');
const SENDMAIL_BIN = join(process.cwd(), 'dist', 'core', 'cli', 'sendmail.js');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `petrel sendmail ARGS` (or another command line) with `input` on standard input. */
function run(command: readonly string[], input: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    // A sendmail that refuses before reading closes its end; that is not this test's concern.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

const sendmail = (configFile: string, args: readonly string[], input: string | Buffer) => run([NODE, CLI, 'sendmail', '-C', configFile, ...args], input);

/** A server config: mail for petrel.test and for its own name lands in maildirs under dataDir. */
function serverConfig(dataDir: string, extra: { server?: object; limits?: object } = {}) {
  return {
    server: { hostname: 'mx.petrel.test', dataDir, localDomains: ['petrel.test', 'mx.petrel.test'], shutdownTimeout: '5s', ...extra.server },
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
    dns: { reverseLookup: false },
    ...(extra.limits ? { limits: extra.limits } : {}),
    plugins: [
      { name: 'relay-access' },
      { name: 'queue-spool' },
      { name: 'routing', options: { local: 'deliver-maildir' } },
      { name: 'deliver-maildir', options: { mailbox: '{local}' } },
    ],
  };
}

function writeConfig(file: string, config: Record<string, unknown>): string {
  writeFileSync(file, stringify(runnableAsRoot(config)));
  chmodSync(file, 0o644);
  return file;
}

/** What is in the maildrop besides the corrupt/ directory. */
function maildropFiles(dataDir: string): string[] {
  return readdirSync(join(dataDir, 'maildrop')).filter((name) => name !== 'corrupt');
}

describe('petrel sendmail, with the server running', () => {
  const temp = tempDir();
  const dataDir = join(temp.path, 'data');
  const mailbox = (local: string) => join(dataDir, 'maildir', local);
  let server: ChildPetrel;
  let file: string;

  before(async () => {
    server = await ChildPetrel.start(temp.path, serverConfig(dataDir, { limits: { messageSize: '64KiB' } }));
    file = server.configFile;
  });
  after(async () => {
    await server.stop();
    temp.remove();
  });

  it('-t: To, Cc and Bcc recipients get it, without the Bcc field; From, Date and Message-ID are added; lines end in CRLF', async () => {
    const input = 'To: alice@petrel.test\nCc: Bob <bob@petrel.test>\nBcc: carol@petrel.test\nSubject: nightly report\n\nall good\n';
    const result = await sendmail(file, ['-t'], input);
    assert.deepEqual(result, { code: 0, stdout: '', stderr: '' });
    for (const local of ['alice', 'bob', 'carol']) {
      const [stored] = await waitForMail(mailbox(local));
      assert.ok(stored.startsWith('Return-Path: <root@mx.petrel.test>\r\n'), 'the sender is the invoking user at server.hostname');
      assert.match(stored, /\r\nReceived: by mx\.petrel\.test \(Petrel, from userid 0\)\r\n\tid [0-9a-z]{9}-[0-9a-f]{16};\r\n\t\w{3}, /);
      assert.doesNotMatch(stored, /^Bcc:/im, 'Bcc is not delivered to anyone');
      assert.match(stored, /\r\nTo: alice@petrel\.test\r\nCc: Bob <bob@petrel\.test>\r\nSubject: nightly report\r\nFrom: root@mx\.petrel\.test\r\nDate: \w{3}, \d+ \w{3} \d{4} [\d:]{8} \+0000\r\nMessage-ID: <[0-9a-z-]+@mx\.petrel\.test>\r\n\r\nall good\r\n$/);
      assert.doesNotMatch(stored, /[^\r]\n/, 'every line ends in CRLF');
    }
    const accepted = server.logLines.filter((line) => line.msg === 'message accepted' && line.listener === 'sendmail');
    assert.equal(accepted.length, 1);
    assert.deepEqual(accepted[0].to, ['alice@petrel.test', 'bob@petrel.test', 'carol@petrel.test']);
    assert.equal(accepted[0].user, 'root');
  });

  it('-f sets the envelope sender and -F the name in the From: it adds; a From: of the message stays as it is', async () => {
    assert.equal((await sendmail(file, ['-f', 'cron@petrel.test', '-F', 'Cron Daemon', 'dave'], 'Subject: no from\n\nbody\n')).code, 0);
    const [added] = await waitForMail(mailbox('dave'));
    assert.ok(added.startsWith('Return-Path: <cron@petrel.test>\r\nDelivered-To: dave@mx.petrel.test\r\n'), 'a bare name is a user at server.hostname');
    assert.match(added, /\r\nFrom: Cron Daemon <cron@petrel\.test>\r\n/);

    assert.equal((await sendmail(file, ['-f', 'Cron <cron@petrel.test>', '-F', 'Ignored Name', 'erin@petrel.test'], 'From: Nightly <nightly@petrel.test>\n\nbody\n')).code, 0);
    const [kept] = await waitForMail(mailbox('erin'));
    assert.ok(kept.startsWith('Return-Path: <cron@petrel.test>\r\n'));
    assert.match(kept, /\r\nFrom: Nightly <nightly@petrel\.test>\r\n/);
    assert.doesNotMatch(kept, /Ignored Name/);
  });

  it('a line with a single dot ends the message unless -i or -oi; other dots stay as they are', async () => {
    const input = 'Subject: dots\n\nfirst\n..two dots stay two\n.\nafter the dot\n';
    assert.equal((await sendmail(file, ['frank'], input)).code, 0);
    const [ended] = await waitForMail(mailbox('frank'));
    assert.ok(ended.endsWith('\r\n\r\nfirst\r\n..two dots stay two\r\n'), JSON.stringify(ended.slice(-60)));

    for (const [flag, local] of [['-i', 'grace'], ['-oi', 'heidi']]) {
      assert.equal((await sendmail(file, [flag, local], input)).code, 0);
      const [whole] = await waitForMail(mailbox(local));
      assert.ok(whole.endsWith('\r\n\r\nfirst\r\n..two dots stay two\r\n.\r\nafter the dot\r\n'), `${flag}: ${JSON.stringify(whole.slice(-60))}`);
    }
  });

  it('takes what cron passes (-FCronDaemon -i -B8BITMIME -oem root) and ignores the flags Postfix ignores', async () => {
    const input = Buffer.from('Subject: cron <root@host> backup\nContent-Type: text/plain; charset=utf-8\n\nGrüße from cron\n', 'utf8');
    const cron = await sendmail(file, ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root'], input);
    assert.deepEqual(cron, { code: 0, stdout: '', stderr: '' });
    const [stored] = await waitForMail(mailbox('root'));
    assert.match(stored, /\r\nFrom: CronDaemon <root@mx\.petrel\.test>\r\n/);
    assert.ok(stored.endsWith('\r\n\r\nGrüße from cron\r\n'), 'the 8-bit body is kept byte for byte');

    const ignored = await sendmail(file, ['-odi', '-oem', '-om', '-v', '-U', '-G', '-m', '-Am', '-L', 'label', '-h', '5', '-O', 'x=y', '-bm', 'ivan'], 'Subject: flags\n\nx\n');
    assert.deepEqual(ignored, { code: 0, stdout: '', stderr: '' });
    await waitForMail(mailbox('ivan'));
  });

  it('bad usage exits 64 with a message, and keeps nothing', async () => {
    const cases: [string[], string, RegExp][] = [
      [['-j', 'x@petrel.test'], 'Subject: x\n\nx\n', /unknown option -j\nusage: sendmail/],
      [[], 'Subject: x\n\nx\n', /no recipients: name them on the command line, or use -t/],
      [['-t'], 'Subject: nobody named\n\nx\n', /no recipient addresses found in the message header/],
      [['-B', '9BIT', 'x@petrel.test'], 'x\n', /-B needs 7BIT or 8BITMIME/],
      [['-bs'], '', /-bs: SMTP on standard input is not supported/],
      [['-bp'], '', /run `petrel queue list`/],
      [['x@petrel.test', '-f'], '', /option -f needs a value/],
      [['not an address@@'], 'x\n', /is not an address/],
    ];
    for (const [args, input, message] of cases) {
      const result = await sendmail(file, args, input);
      assert.equal(result.code, 64, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.match(result.stderr, /^sendmail: /);
    }
    assert.deepEqual(maildropFiles(dataDir), []);
  });

  it('a message larger than limits.messageSize exits 65 and keeps nothing', async () => {
    const result = await sendmail(file, ['judy'], `Subject: big\n\n${'x'.repeat(100)}\n`.repeat(1000));
    assert.equal(result.code, 65);
    assert.match(result.stderr, /message larger than limits\.messageSize \(65536 bytes\); nothing was sent/);
    assert.deepEqual(maildropFiles(dataDir), []);
  });

  it('petrel -c FILE sendmail ... takes its config from -c, as -C would', async () => {
    const result = await run([NODE, CLI, '-c', file, 'sendmail', 'leo@petrel.test'], 'Subject: -c first\n\nx\n');
    assert.deepEqual(result, { code: 0, stdout: '', stderr: '' });
    await waitForMail(mailbox('leo'));
    const misplaced = await run([NODE, CLI, '-t', 'sendmail', 'leo@petrel.test'], 'x\n');
    assert.equal(misplaced.code, 64);
    assert.match(misplaced.stderr, /only -c FILE may come before sendmail; its own flags go after it/);
  });

  it('the sendmail command is petrel sendmail', async () => {
    const result = await run([NODE, SENDMAIL_BIN, '-C', file, '-t'], 'To: kate@petrel.test\nSubject: through the sendmail bin\n\nx\n');
    assert.equal(result.code, 0, result.stderr);
    await waitForMail(mailbox('kate'));
  });

  it('what is not a message in the maildrop is set aside, never read through a link', async () => {
    const maildrop = join(dataDir, 'maildrop');
    // Written elsewhere and renamed in whole, as a complete file appears (sendmail marks it complete only when it is).
    const junk = join(dataDir, 'junk');
    writeFileSync(junk, 'not a maildrop file, though it is long enough to have a trailer\n', { mode: 0o740 });
    renameSync(junk, join(maildrop, '0mx0aaaaa-0000000000000001'));
    symlinkSync(join(dataDir, 'queue'), join(maildrop, '0mx0aaaaa-0000000000000002'));
    const setAside = (line: Record<string, unknown>) => String(line.msg).includes('is not a message Petrel can queue');
    await server.waitForLog(setAside, 2);
    assert.deepEqual(maildropFiles(dataDir), []);
    assert.deepEqual(readdirSync(join(maildrop, 'corrupt')).sort(), ['0mx0aaaaa-0000000000000001', '0mx0aaaaa-0000000000000002']);
    const reasons = server.logLines.filter(setAside).map((line) => line.reason);
    assert.deepEqual(reasons.sort(), ['a symbolic link', 'no maildrop trailer']);
  });
});

/** Puts a complete maildrop file into the maildrop as `name`, made elsewhere and renamed in whole (as sendmail's appears). */
/** Puts a finished drop file into the maildrop; `secondLink` gets a hard link to it before it appears there. */
function dropFile(dataDir: string, name: string, message: string, envelope: object, secondLink?: string): void {
  const offset = String(Buffer.byteLength(message)).padStart(16, '0');
  const staging = join(dataDir, `staging-${name}`);
  writeFileSync(staging, `${message}${JSON.stringify(envelope)}\nPETREL-MAILDROP 1 ${offset}\n`, { mode: 0o740 });
  if (secondLink !== undefined) linkSync(staging, secondLink);
  renameSync(staging, join(dataDir, 'maildrop', name));
}

describe('maildrop files that cannot be queued', () => {
  const temp = tempDir();
  const dataDir = join(temp.path, 'data');
  let server: ChildPetrel;
  const envelope = (from: string) => ({ from, to: ['alice@petrel.test'], bodyType: '7bit', smtpUtf8: false });
  const setAside = (line: Record<string, unknown>) => String(line.msg).includes('is not a message Petrel can queue');

  before(async () => {
    server = await ChildPetrel.start(temp.path, serverConfig(dataDir, { limits: { messageSize: '64KiB' } }));
  });
  after(async () => {
    await server.stop();
    temp.remove();
  });

  it('one too large for limits.messageSize now is set aside, and its local sender gets a delivery status notification', async () => {
    const message = `From: carol@petrel.test\r\nTo: alice@petrel.test\r\nSubject: the big report\r\n\r\n${'0123456789abcdef\r\n'.repeat(6000)}`;
    dropFile(dataDir, '0mx0aaaaa-00000000000000a1', message, envelope('carol@petrel.test'));
    await server.waitForLog(setAside, 1);
    assert.ok(readdirSync(join(dataDir, 'maildrop', 'corrupt')).includes('0mx0aaaaa-00000000000000a1'));
    const [dsn] = await waitForMail(join(dataDir, 'maildir', 'carol'));
    assert.match(dsn, /\r\nSubject: Undelivered Mail Returned to Sender\r\n/);
    assert.match(dsn, /<alice@petrel\.test>: 552 5\.3\.4 /);
    assert.match(dsn, /\r\nStatus: 5\.3\.4\r\n/);
    assert.match(dsn, /\r\nSubject: the big report\r\n/, 'the original headers come back');
    assert.ok(!dsn.includes('0123456789abcdef'), 'not its body');
    assert.deepEqual(readdirSync(join(dataDir, 'maildir')).sort(), ['carol'], 'alice got nothing');
  });

  it('a FIFO, a directory and a file with a second link are set aside without being read', async () => {
    const maildrop = join(dataDir, 'maildrop');
    const before = server.logLines.filter(setAside).length;
    // Each is made outside and renamed in, as sendmail does: made in place, pickup could
    // set it aside before mkfifo's own chmod (which then fails).
    const fifo = join(dataDir, 'staging-fifo');
    const made = await run(['mkfifo', '-m', '0740', fifo], '');
    assert.equal(made.code, 0, made.stderr);
    renameSync(fifo, join(maildrop, '0mx0aaaaa-00000000000000b1'));
    const staging = join(dataDir, 'staging-dir');
    mkdirSync(staging);
    renameSync(staging, join(maildrop, '0mx0aaaaa-00000000000000b2'));
    // Linked before it is in the maildrop: linked after, pickup could take it while it had one link.
    dropFile(dataDir, '0mx0aaaaa-00000000000000b3', 'Subject: linked\r\n\r\nx\r\n', envelope('carol@petrel.test'), join(dataDir, 'second-link'));
    await server.waitForLog(setAside, before + 3);
    const reasons = server.logLines.filter(setAside).slice(before).map((line) => line.reason);
    assert.deepEqual(reasons, Array(3).fill('not a regular file with a single link'));
    assert.deepEqual(maildropFiles(dataDir), []);
  });

  it('one with an empty message is set aside once, with the reason, and pickup goes on', async () => {
    const before = server.logLines.filter(setAside).length;
    dropFile(dataDir, '0mx0aaaaa-00000000000000a2', '', envelope('carol@petrel.test'));
    await server.waitForLog(setAside, before + 1);
    assert.equal(server.logLines.filter(setAside).at(-1)?.reason, 'no message before the envelope');
    assert.deepEqual(maildropFiles(dataDir), []);
    const stored = await sendmail(server.configFile, ['alice@petrel.test'], 'Subject: still working\n\nyes\n');
    assert.equal(stored.code, 0, stored.stderr);
    const [mail] = await waitForMail(join(dataDir, 'maildir', 'alice'));
    assert.match(mail, /\r\nSubject: still working\r\n/);
  });
});

describe('petrel sendmail on a full disk', () => {
  const temp = tempDir();
  let disk: SmallDisk;
  after(async () => {
    await disk?.unmount();
    temp.remove();
  });

  it('exits 75 (EX_TEMPFAIL: try again later) and keeps nothing', async () => {
    disk = await SmallDisk.mount(1 << 20);
    const dataDir = join(disk.path, 'data');
    mkdirSync(dataDir);
    const file = writeConfig(join(temp.path, 'mta.yaml'), serverConfig(dataDir));
    // The first one makes the maildrop (root may, as the data directory's owner) and is kept.
    assert.equal((await sendmail(file, ['alice@petrel.test'], 'Subject: fits\n\nok\n')).code, 0);
    await disk.fill();
    const full = await sendmail(file, ['alice@petrel.test'], `Subject: no room\n\n${'x'.repeat(64 * 1024)}\n`);
    assert.equal(full.code, 75, full.stderr);
    assert.match(full.stderr, /cannot store the message in .*maildrop now \(.*ENOSPC.*\); nothing was sent/);
    assert.equal(maildropFiles(dataDir).length, 1, 'only the first message is there');
  });
});

describe('petrel sendmail, with the server stopped', () => {
  const temp = tempDir();
  after(() => temp.remove());

  it('refuses with 75 before the data directory exists, keeps the message while the server is stopped, and the server delivers it when it starts', async () => {
    const dataDir = join(temp.path, 'data');
    const file = writeConfig(join(temp.path, 'mta.yaml'), serverConfig(dataDir));
    const early = await sendmail(file, ['-t'], 'To: alice@petrel.test\n\nx\n');
    assert.equal(early.code, 75);
    assert.match(early.stderr, new RegExp(`data directory ${dataDir} does not exist yet: start Petrel once`));

    const first = await ChildPetrel.start(temp.path, serverConfig(dataDir));
    await first.stop();
    const stored = await sendmail(file, ['-t'], 'To: alice@petrel.test\nSubject: while stopped\n\nkept\n');
    assert.deepEqual(stored, { code: 0, stdout: '', stderr: '' });
    const [waiting] = maildropFiles(dataDir);
    assert.equal(statSync(join(dataDir, 'maildrop', waiting)).mode & 0o777, 0o740, 'complete and synced before sendmail exited');

    const second = await ChildPetrel.start(temp.path, serverConfig(dataDir));
    try {
      const [delivered] = await waitForMail(join(dataDir, 'maildir', 'alice'));
      assert.match(delivered, /\r\nSubject: while stopped\r\n/);
      assert.match(delivered, new RegExp(`\tid ${waiting}\r\n`), 'queued under the id sendmail gave it');
      assert.deepEqual(maildropFiles(dataDir), []);
    } finally {
      await second.stop();
    }
  });
});

describe('mail left in the maildrop while the server was stopped', () => {
  const temp = tempDir();
  after(() => temp.remove());

  it('does not keep the listeners closed: the server serves while it queues the backlog', async () => {
    const dataDir = join(temp.path, 'data');
    mkdirSync(dataDir);
    const file = writeConfig(join(temp.path, 'mta.yaml'), serverConfig(dataDir));
    for (const local of ['mia', 'noah']) assert.equal((await sendmail(file, [`${local}@petrel.test`], `Subject: for ${local}\n\nx\n`)).code, 0);

    const server = await startTestServer({ server: { hostname: 'mx.petrel.test', dataDir, localDomains: ['petrel.test'] } });
    try {
      // Start resolves once connections are served; nothing of the backlog had to be queued first.
      assert.equal(maildropFiles(dataDir).length, 2, 'the backlog is still in the maildrop when the listeners open');
      const client = await server.client();
      await client.quit();
      await eventually(() => maildropFiles(dataDir).length === 0, 'the backlog to be queued');
      assert.equal((await server.petrel.queue.list()).length, 2);
    } finally {
      await server.stop();
    }
  });
});

describe('petrel sendmail from another local user', () => {
  const temp = tempDir();
  const dataDir = join(temp.path, 'data');
  let server: ChildPetrel;
  // The server runs as nobody; daemon (uid 1) sends: two accounts that share nothing.
  const asDaemon = ['setpriv', '--reuid=1', '--regid=1', '--clear-groups'];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test switches users; run the suite as root (CI does)');
    chmodSync(temp.path, 0o755);
    server = await ChildPetrel.start(temp.path, serverConfig(dataDir, { server: { user: 'nobody', group: 'nogroup' } }));
  });
  after(async () => {
    await server.stop();
    temp.remove();
  });

  it('run by root, it writes into no directory but the maildrop: not through a link the data directory\'s owner put there', async () => {
    // What a compromised server could leave for root's cron mail: maildrop/ swapped for a link to a directory of root's.
    const elsewhere = join(temp.path, 'cron.d');
    mkdirSync(elsewhere, { mode: 0o755 });
    const planted = join(temp.path, 'planted');
    mkdirSync(planted);
    symlinkSync(elsewhere, join(planted, 'maildrop'));
    lchownSync(planted, 65534, 65534);
    lchownSync(join(planted, 'maildrop'), 65534, 65534);
    const file = writeConfig(join(temp.path, 'planted.yaml'), serverConfig(planted));
    const refused = await sendmail(file, ['alice@petrel.test'], 'Subject: from cron\n\nx\n');
    assert.equal(refused.code, 77, refused.stderr);
    assert.match(refused.stderr, /maildrop is not Petrel's maildrop \(a directory of mode 3733; this is mode 0755, owned by uid 0\)/);
    assert.deepEqual(readdirSync(elsewhere), [], 'nothing was written through the link');

    // With no maildrop yet, root makes it as the data directory's owner, corrupt/ with it.
    rmSync(join(planted, 'maildrop'));
    assert.equal((await sendmail(file, ['alice@petrel.test'], 'Subject: from cron\n\nx\n')).code, 0);
    for (const path of [join(planted, 'maildrop'), join(planted, 'maildrop', 'corrupt')]) assert.equal(statSync(path).uid, 65534, `${path} is nobody's`);
    assert.equal(statSync(join(planted, 'maildrop')).mode & 0o7777, 0o3733);
  });

  it('reaches a server running as another user through the maildrop; the Received field names the uid; without a way in it exits 77', async () => {
    const maildrop = statSync(join(dataDir, 'maildrop'));
    assert.equal(maildrop.mode & 0o7777, 0o3733, 'maildrop: writable by all, listable by none, sticky, set-group-ID');
    assert.equal(maildrop.uid, 65534);

    chmodSync(dataDir, 0o750);
    const refused = await run([...asDaemon, NODE, CLI, 'sendmail', '-C', server.configFile, 'alice@petrel.test'], 'x\n');
    assert.equal(refused.code, 77);
    assert.match(refused.stderr, new RegExp(`permission denied\\): the data directory must let you pass \\(chmod o\\+x ${dataDir}`));

    chmodSync(dataDir, 0o751);
    const sent = await run([...asDaemon, NODE, CLI, 'sendmail', '-C', server.configFile, 'alice@petrel.test'], 'Subject: from daemon\n\nhello\n');
    assert.deepEqual(sent, { code: 0, stdout: '', stderr: '' });
    const [stored] = await waitForMail(join(dataDir, 'maildir', 'alice'));
    assert.ok(stored.startsWith('Return-Path: <daemon@mx.petrel.test>\r\n'));
    assert.match(stored, /Received: by mx\.petrel\.test \(Petrel, from userid 1\)/);
    const accepted = server.logLines.find((line) => line.msg === 'message accepted' && line.listener === 'sendmail');
    assert.equal(accepted?.user, 'daemon');
    assert.ok(!existsSync(join(dataDir, 'maildrop', 'corrupt', String(accepted?.qid))));
  });

  it('a corrupt/ that another user made (a link into the data directory) takes nothing set aside anywhere', async () => {
    chmodSync(dataDir, 0o751);
    const maildrop = join(dataDir, 'maildrop');
    rmSync(join(maildrop, 'corrupt'), { recursive: true }); // an operator cleaning up; the server makes it again when it needs it
    // daemon gets there first: corrupt -> the data directory, then a file named like one the server keeps there.
    const planted = await run([...asDaemon, 'sh', '-c', `ln -s ${dataDir} ${maildrop}/corrupt && umask 027 && echo 'daemon:planted' > ${maildrop}/users`], '');
    assert.equal(planted.code, 0, planted.stderr);
    await server.waitForLog((line) => String(line.msg).includes(`${maildrop}/users`) || line.file === `${maildrop}/users`);
    assert.ok(!existsSync(join(dataDir, 'users')), 'nothing was moved into the data directory through the link');
    assert.ok(existsSync(join(maildrop, 'users')), 'the file stays where it was put');
    assert.match(server.logLines.map((line) => String(line.msg)).join('\n'), /maildrop\/corrupt is not the server's own directory \(a symbolic link\)/);
  });
});
