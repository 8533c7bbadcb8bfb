import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { maildirHostName } from '../plugins/deliver-maildir/maildir-writer.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { eventually } from './harness/eventually.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer } from './harness/test-server.js';

/**
 * deliver-maildir removes, at start, the copies that interrupted deliveries
 * left in tmp/: a writer killed between writing its copy and renaming it
 * into new/ leaves a complete message there, which nothing else would ever
 * remove (the message itself is delivered again from the queue).
 */

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function maildir(path: string): string {
  for (const part of ['tmp', 'new', 'cur']) mkdirSync(join(path, part), { recursive: true });
  return path;
}

/** Resolves as soon as a file appears in `directory` (inotify, through fs.watch). */
function fileCreatedIn(directory: string): { created: Promise<void>; stop: () => void } {
  let watcher: FSWatcher | undefined;
  const created = new Promise<void>((resolve) => {
    watcher = watch(directory, () => resolve());
  });
  return { created, stop: () => watcher?.close() };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('deliver-maildir: stale files in tmp/', () => {
  it('removes at start what a writer of this host left (its process gone), and anything older than 36 hours; keeps the rest', async () => {
    const dir = tempDir('petrel-maildir-tmp-');
    cleanups.push(() => dir.remove());
    const root = join(dir.path, 'maildir');
    const host = maildirHostName();
    const seconds = Math.floor(Date.now() / 1000);
    const dead = await deadPid();
    const sleeper = spawn('sleep', ['60']);
    cleanups.push(() => void sleeper.kill('SIGKILL'));
    const alice = maildir(join(root, 'alice'));
    const lists = maildir(join(root, 'example.org', 'bob', '.lists'));
    maildir(join(root, 'example.org', 'bob'));
    const plant = (directory: string, name: string, ageMs = 0) => {
      const path = join(directory, 'tmp', name);
      writeFileSync(path, 'Subject: a complete copy\r\n\r\nbody\r\n');
      if (ageMs > 0) utimesSync(path, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
      return name;
    };
    const removed = [
      plant(alice, `${seconds}.M1P${dead}Q1.${host}`),
      plant(alice, `${seconds}.M2P${process.pid}Q1.${host}`), // this process, restarted with the same pid (not writing it)
      plant(alice, 'written.by.another.mda', 37 * 3_600_000),
      plant(lists, `${seconds}.M3P${dead}Q7.${host}`),
    ];
    const kept = [
      plant(alice, `${seconds}.M4P${sleeper.pid}Q1.${host}`), // a live writer on this host
      plant(alice, `${seconds}.M5P${dead}Q1.elsewhere.example`), // another host's, recent (a shared maildir)
      plant(alice, 'recent.by.another.mda'),
    ];
    writeFileSync(join(alice, 'new', `${seconds}.M0P1Q1.${host},S=10`), 'delivered\r\n');

    const server = await startTestServer({
      server: { dataDir: dir.path, localDomains: ['localhost'] },
      plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }, { name: 'deliver-maildir' }],
    });
    cleanups.push(() => server.stop());
    const [swept] = await eventually(() => {
      const lines = server.logs.lines.filter((line) => String(line.msg).startsWith('maildir tmp/ swept'));
      return lines.length > 0 ? lines : undefined;
    }, 'the sweep of tmp/');
    assert.equal(swept.removed, removed.length);
    assert.equal(swept.kept, kept.length);
    const left = [...readdirSync(join(alice, 'tmp')), ...readdirSync(join(lists, 'tmp'))].sort();
    assert.deepEqual(left, [...kept].sort());
    assert.deepEqual(readdirSync(join(alice, 'new')), [`${seconds}.M0P1Q1.${host},S=10`], 'new/ is untouched');
  });

  it('after SIGKILL in the middle of deliveries, the next start leaves tmp/ empty and every acknowledged message in new/', async () => {
    const dir = tempDir('petrel-maildir-kill-');
    cleanups.push(() => dir.remove());
    const config = {
      server: { hostname: 'mx.petrel.test', dataDir: join(dir.path, 'data'), localDomains: ['localhost'], shutdownTimeout: '5s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      logging: { level: 'info' },
      delivery: { retry: ['100ms'] },
      plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }, { name: 'deliver-maildir', options: { lineEndings: 'lf' } }],
    };
    const mailbox = maildir(join(dir.path, 'data', 'maildir', 'alice'));
    const tmpFiles = () => readdirSync(join(mailbox, 'tmp'));
    // Large messages keep each delivery in tmp/ for a while: the kill comes as soon as one appears there.
    const body = `${'x'.repeat(76)}\r\n`.repeat(40_000);
    const acknowledged: string[] = [];
    let petrel: ChildPetrel | undefined;
    cleanups.push(async () => {
      petrel?.kill('SIGKILL');
      await petrel?.exited();
    });

    for (let round = 0; round < 10 && tmpFiles().length === 0; round++) {
      const child = await ChildPetrel.start(dir.path, config);
      petrel = child;
      const writing = fileCreatedIn(join(mailbox, 'tmp'));
      const sending = (async () => {
        const client = await SmtpTestClient.ready(child.port());
        for (let i = 0; i < 6; i++) {
          const messageId = `<kill-${round}-${i}@petrel.test>`;
          const reply = await client.sendMail('sender@example.org', ['alice@localhost'], sampleMessage({ to: 'alice@localhost', messageId, body }));
          if (reply.code === 250) acknowledged.push(messageId);
        }
        await client.quit();
      })().catch(() => undefined); // the kill cuts the last one short
      await writing.created;
      child.kill('SIGKILL');
      await child.exited();
      writing.stop();
      await sending;
    }
    const leftovers = tmpFiles();
    assert.ok(leftovers.length > 0, 'a kill left a copy in tmp/');

    petrel = await ChildPetrel.start(dir.path, config);
    await petrel.waitForLog((line) => String(line.msg).startsWith('maildir tmp/ swept') && Number(line.removed) >= leftovers.length);
    const delivered = await eventually(() => {
      const ids = new Set(readdirSync(join(mailbox, 'new')).map((name) => /^Message-ID: (<[^>]+>)/m.exec(readFileSync(join(mailbox, 'new', name), 'utf8'))?.[1]));
      return acknowledged.every((id) => ids.has(id)) ? ids : undefined;
    }, `all ${acknowledged.length} acknowledged messages in new/`, 60_000);
    assert.ok(delivered.size >= acknowledged.length);
    await eventually(() => tmpFiles().length === 0, 'tmp/ empty once deliveries are done', 20_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${tmpFiles().join(' ')} (before the restart: ${leftovers.join(' ')})`);
    });
    petrel.kill('SIGTERM');
    assert.equal((await petrel.exited()).code, 0);
  });
});
