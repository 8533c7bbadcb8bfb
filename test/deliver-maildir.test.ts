import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { MailboxMap, safeName } from '../plugins/deliver-maildir/mailbox-map.js';
import { eventually } from './harness/eventually.js';
import { newMail, waitForMail } from './harness/maildir.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/** deliver-maildir: mail for local domains into maildirs under the data directory. */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function petrel(maildir: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startTestServer({
    server: { localDomains: ['localhost', 'other.test'] },
    delivery: { retry: ['1h'], delayWarningAfter: 0 },
    plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }, { name: 'deliver-maildir', options: maildir }],
  });
  cleanups.push(() => server.stop());
  return server;
}

/** A server whose helo-check quarantines a client whose HELO literal is not its address: a real quarantine mark. */
async function quarantining(maildir: Record<string, unknown>): Promise<TestServer> {
  const server = await startTestServer({
    delivery: { retry: ['1h'], delayWarningAfter: 0 },
    plugins: [
      { name: 'helo-check', options: { skipNetworks: [], checks: { literalMismatch: 'quarantine' } } },
      { name: 'relay-access' },
      { name: 'queue-spool' },
      { name: 'deliver-maildir', options: maildir },
    ],
  });
  cleanups.push(() => server.stop());
  return server;
}

async function send(server: TestServer, to: string[], message = sampleMessage({ to: to.join(', ') })): Promise<string> {
  const client = await server.client();
  const reply = await client.sendMail('sender@example.org', to, message);
  assert.match(reply.raw, /^250 /);
  await client.quit();
  return /queued as (\S+)/.exec(reply.raw)![1];
}

describe('deliver-maildir', () => {
  it('stores the exact bytes that were sent, after Return-Path, Delivered-To and our trace header, durably in new/', async () => {
    const server = await petrel();
    const message = sampleMessage({ to: 'alice@localhost', subject: 'byte for byte', body: 'Line one\r\n.a line that starts with a dot\r\n\tand a tab\r\nÜnïcödé too' });
    await send(server, ['alice@localhost'], message);
    const mailbox = join(server.dataDir, 'maildir', 'alice');
    const [stored] = await waitForMail(mailbox);
    const prefix = 'Return-Path: <sender@example.org>\r\nDelivered-To: alice@localhost\r\n';
    assert.ok(stored.startsWith(prefix), stored.slice(0, 200));
    assert.ok(stored.endsWith(message), 'the message as the client sent it (dot-stuffing undone)');
    const between = stored.slice(prefix.length, stored.length - message.length);
    const fields = between.split(/\r\n(?![ \t])/).filter((field) => field !== '');
    assert.ok(fields.length > 0 && fields.every((field) => field.startsWith('Received: ')), `only our trace header in between:\n${between}`);
    assert.deepEqual(readdirSync(join(mailbox, 'tmp')), [], 'nothing left in tmp/');
    assert.ok(existsSync(join(mailbox, 'cur')));
    const [name] = newMail(mailbox);
    assert.match(name, new RegExp(`^\\d+\\.M\\d+P${process.pid}Q\\d+\\.[^/]+,S=${Buffer.byteLength(stored)}$`), 'a unique maildir name with its size');
  });

  it('maps addresses to mailboxes: +tags, aliases, catch-alls, per-domain directories, bare postmaster', async () => {
    const server = await petrel({
      mailbox: '{domain}/{local}',
      mailboxes: { 'postmaster@localhost': 'localhost/alice', '@other.test': 'other.test/catchall' },
      subaddressFolders: true,
    });
    await send(server, ['alice+lists@localhost', 'postmaster', 'whoever@other.test', 'Bob@LOCALHOST']);
    const root = join(server.dataDir, 'maildir');
    await waitForMail(join(root, 'localhost', 'alice', '.lists'));
    assert.ok(existsSync(join(root, 'localhost', 'alice', '.lists', 'maildirfolder')), 'a Maildir++ folder');
    assert.match((await waitForMail(join(root, 'localhost', 'alice')))[0], /^Return-Path: <sender@example\.org>\r\nDelivered-To: postmaster\r\n/, 'a bare postmaster (RFC 5321 4.5.1) is the first local domain’s');
    assert.equal((await waitForMail(join(root, 'other.test', 'catchall'))).length, 1);
    assert.equal((await waitForMail(join(root, 'localhost', 'bob'))).length, 1, 'case does not matter');
  });

  it('writes Unix line ends when asked', async () => {
    const server = await petrel({ lineEndings: 'lf' });
    await send(server, ['carol@localhost']);
    const [stored] = await waitForMail(join(server.dataDir, 'maildir', 'carol'));
    assert.ok(!stored.includes('\r'));
    assert.match(stored, /^Return-Path: <sender@example\.org>\nDelivered-To: carol@localhost\n/);
  });

  it('bounces mail for a mailbox that does not exist when mailboxes are not created', async () => {
    const server = await petrel({ createMailboxes: false });
    const id = await send(server, ['nobody@localhost']);
    const [bounced] = await eventually(() => server.logs.find({ qid: id, msg: 'delivery bounced' }).at(0) && server.logs.find({ qid: id, msg: 'delivery bounced' }), 'the bounce');
    assert.equal(bounced.reply, '550 5.1.1 <nobody@localhost>: no such mailbox');
    assert.ok(!existsSync(join(server.dataDir, 'maildir', 'nobody')));
  });

  it('files quarantined messages into the Junk folder of each recipient, whoever quarantined them', async () => {
    const server = await quarantining({ subaddressFolders: true });
    const client = await server.client('mx', { ehlo: '[192.0.2.9]' });
    assert.match((await client.sendMail('nat@example.org', ['alice+lists@localhost', 'bob@localhost'], sampleMessage({ subject: 'junk' }))).raw, /^250 /);
    await client.quit();
    const root = join(server.dataDir, 'maildir');
    for (const mailbox of [join(root, 'alice'), join(root, 'bob')]) {
      const [stored] = await waitForMail(join(mailbox, '.Junk'));
      assert.match(stored, /\r\nX-Petrel-Quarantine: helo=literalMismatch \(\[192\.0\.2\.9\]\)\r\n/);
      assert.ok(existsSync(join(mailbox, '.Junk', 'maildirfolder')), 'a Maildir++ folder');
      assert.ok(['cur', 'tmp'].every((sub) => existsSync(join(mailbox, '.Junk', sub))));
      assert.deepEqual(newMail(mailbox), [], 'nothing in the inbox');
    }
    assert.equal(newMail(join(root, 'alice', '.lists')).length, 0, 'quarantine wins over the +tag folder');
    await send(server, ['alice@localhost'], sampleMessage({ subject: 'not junk' }));
    assert.match((await waitForMail(join(root, 'alice')))[0], /Subject: not junk/, 'mail without the mark goes to the inbox');
  });

  it('files quarantined mail into the folder named by junkFolder, created in an existing mailbox', async () => {
    const server = await quarantining({ junkFolder: 'Spam', createMailboxes: false });
    const mailbox = join(server.dataDir, 'maildir', 'carol');
    for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(mailbox, sub), { recursive: true });
    const client = await server.client('mx', { ehlo: '[192.0.2.9]' });
    assert.match((await client.sendMail('nat@example.org', ['carol@localhost'], sampleMessage())).raw, /^250 /);
    await client.quit();
    assert.equal((await waitForMail(join(mailbox, '.Spam'))).length, 1);
  });

  it('never lets an address name a path outside the maildir root', () => {
    assert.equal(safeName('../../etc'), '%2E.%2F..%2Fetc');
    assert.equal(safeName('.hidden'), '%2Ehidden');
    assert.equal(safeName('a/b\0c'), 'a%2Fb%00c');
    assert.equal(safeName('jörg'), 'j%C3%B6rg');
    const map = new MailboxMap({ template: '{domain}/{local}', mailboxes: {}, separator: '+', folders: true });
    const root = '/srv/maildir';
    for (const address of ['"../x"+../y@../z', '..@..', '.+..@.', '"/etc/passwd"@localhost', 'a+/../../b@c', '%2e%2e@localhost']) {
      const target = map.targetOf(address);
      if (!target) continue;
      const path = resolve(root, target.mailbox, target.folder ?? '.');
      assert.ok(path.startsWith(`${root}/`), `${address} → ${path}`);
      assert.ok(!`${target.mailbox}/${target.folder ?? ''}`.split('/').some((segment) => segment === '..'), `${address} → ${JSON.stringify(target)}`);
    }
  });
});
