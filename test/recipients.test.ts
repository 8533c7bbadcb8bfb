import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeUsers } from './fixtures/auth.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

describe('recipients', () => {
  const dir = tempDir('petrel-recipients-');
  const listFile = join(dir.path, 'recipients.txt');
  let server: TestServer;

  before(async () => {
    writeFileSync(listFile, '# valid recipients\ncarol@petrel.test\n\n');
    mkdirSync(join(dir.path, 'mail', 'localhost', 'erin'), { recursive: true });
    server = await startTestServer({
      server: { localDomains: ['localhost', 'petrel.test', 'catchall.test'] },
      plugins: [
        {
          name: 'recipients',
          options: {
            addresses: ['alice@localhost', 'bob', '@catchall.test'],
            file: listFile,
            patterns: ['^team-[a-z]+@petrel\\.test$'],
            maildir: join(dir.path, 'mail', '{domain}', '{user}'),
          },
        },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
  });
  after(async () => {
    await server.stop();
    dir.remove();
  });

  async function rcpt(address: string): Promise<string> {
    const client = await server.client();
    await client.command('MAIL FROM:<sender@elsewhere.example>');
    const reply = await client.command(`RCPT TO:<${address}>`, /^\d{3} /);
    await client.quit();
    return reply.raw;
  }

  it('accepts recipients any source knows, with sub-addresses and in any case', async () => {
    const known = [
      'alice@localhost',
      'ALICE+newsletters@LocalHost',
      'bob@localhost',
      'bob@petrel.test',
      'anyone@catchall.test',
      'carol@petrel.test',
      'team-ops@petrel.test',
      'erin@localhost',
      'postmaster@petrel.test',
      'abuse@localhost',
    ];
    for (const address of known) assert.match(await rcpt(address), /^250 /, address);
  });

  it('refuses unknown local recipients with 550 5.1.1', async () => {
    assert.equal(await rcpt('zed@localhost'), '550 5.1.1 <zed@localhost>: Recipient address rejected: User unknown');
    for (const address of ['alice@petrel.test', 'erin@petrel.test', 'team-42@petrel.test', 'x/y@localhost', 'carol+x@localhost']) {
      assert.match(await rcpt(address), /^550 5\.1\.1 /, address);
    }
  });

  it('leaves other domains to relay-access', async () => {
    assert.match(await rcpt('zed@elsewhere.example'), /^554 5\.7\.1 .*Relay access denied/);
  });

  it('reads the recipients file again when it changes', async () => {
    assert.match(await rcpt('dave@petrel.test'), /^550 /);
    appendFileSync(listFile, 'dave@petrel.test\n');
    assert.match(await rcpt('dave@petrel.test'), /^250 /);
  });

  it('with usersFile, every login of auth-file is a mailbox, including ones added while it runs', async () => {
    const users = await writeUsers(dir.path, { 'dora@localhost': 'dora password', frank: 'frank password' }, 'users-for-recipients');
    const withUsers = await startTestServer({
      server: { localDomains: ['localhost', 'petrel.test'] },
      plugins: [{ name: 'recipients', options: { usersFile: users } }, { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    try {
      const rcptTo = async (address: string) => {
        const client = await withUsers.client();
        await client.command('MAIL FROM:<sender@elsewhere.example>');
        const reply = await client.command(`RCPT TO:<${address}>`, /^\d{3} /);
        await client.quit();
        return reply.raw;
      };
      assert.match(await rcptTo('dora@localhost'), /^250 /);
      assert.match(await rcptTo('dora+tag@localhost'), /^250 /);
      assert.match(await rcptTo('frank@petrel.test'), /^250 /, 'a bare login is a mailbox at every local domain');
      assert.match(await rcptTo('dora@petrel.test'), /^550 5\.1\.1 /);
      assert.match(await rcptTo('gus@localhost'), /^550 5\.1\.1 /);
      await writeUsers(dir.path, { 'dora@localhost': 'dora password', 'gus@localhost': 'gus password' }, 'users-for-recipients');
      assert.match(await rcptTo('gus@localhost'), /^250 /, 'read again when it changes');
    } finally {
      await withUsers.stop();
    }
  });

  it('refuses to start when its file or usersFile does not exist, unless optional: true', async () => {
    for (const missing of [{ file: join(dir.path, 'no-list') }, { usersFile: join(dir.path, 'no-users') }]) {
      await assert.rejects(
        startTestServer({ plugins: [{ name: 'recipients', options: missing }, { name: 'relay-access' }, { name: 'queue-spool' }] }),
        /plugin recipients failed to start: (recipients|users) file \S+ does not exist: .*or set optional: true/,
      );
    }
    const tolerant = await startTestServer({
      plugins: [{ name: 'recipients', options: { file: join(dir.path, 'no-list'), usersFile: join(dir.path, 'no-users'), optional: true } }, { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    try {
      const warnings = tolerant.logs.lines.filter((line) => line.level === 'warn' && line.plugin === 'recipients').map((line) => line.msg);
      assert.deepEqual(warnings, [
        `recipients file ${join(dir.path, 'no-list')} does not exist (optional: true): only postmaster@, abuse@, the logins in ${join(dir.path, 'no-users')} are valid recipients at the local domains until it does; it is read as soon as it appears`,
        `users file ${join(dir.path, 'no-users')} does not exist (optional: true): only postmaster@, abuse@, the entries of ${join(dir.path, 'no-list')} are valid recipients at the local domains until it does; it is read as soon as it appears`,
      ]);
      const client = await tolerant.client();
      await client.command('MAIL FROM:<sender@elsewhere.example>');
      await client.command('RCPT TO:<postmaster@localhost>', /^250 /);
      await client.command('RCPT TO:<someone@localhost>', /^550 5\.1\.1 /);
      await client.quit();
    } finally {
      await tolerant.stop();
    }
  });

  it('accepts every local recipient with catchAll, and insists on a source otherwise', async () => {
    const catchAll = await startTestServer({ plugins: [{ name: 'recipients', options: { catchAll: true } }, { name: 'relay-access' }, { name: 'queue-spool' }] });
    try {
      const client = await catchAll.client();
      await client.command('MAIL FROM:<sender@elsewhere.example>');
      await client.command('RCPT TO:<whoever@localhost>', /^250 /);
      await client.quit();
    } finally {
      await catchAll.stop();
    }
    await assert.rejects(
      startTestServer({ plugins: [{ name: 'recipients' }, { name: 'relay-access' }, { name: 'queue-spool' }] }),
      /plugin recipients: .*give at least one of addresses, file, usersFile, patterns or maildir, or set catchAll: true/,
    );
  });
});
