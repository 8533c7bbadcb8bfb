import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runnableAsRoot } from './harness/child-petrel.js';
import { eventually } from './harness/eventually.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');
const CLI = join(process.cwd(), 'dist', 'core', 'cli', 'petrel.js');
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/**
 * `logging.format`: auto is readable lines when standard output is a
 * terminal and JSON otherwise; json and pretty force one. The terminal is a
 * real pseudo-terminal, made by `script` (util-linux).
 */
describe('log format', () => {
  const temp = tempDir();
  const running: ChildProcess[] = [];
  after(async () => {
    for (const child of running) await stopGroup(child);
    temp.remove();
  });

  /** Starts `petrel start` (under a pseudo-terminal when `terminal`), collecting what it prints. */
  function start(name: string, format: string | undefined, terminal: boolean): { output: () => string; raw: () => string; child: ChildProcess } {
    const file = join(temp.path, `${name}.yaml`);
    writeFileSync(file, stringify(runnableAsRoot({
      server: { hostname: 'mx.petrel.test', dataDir: join(temp.path, name), localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      logging: format ? { format } : {},
      plugins: [{ name: 'relay-access' }, { name: 'queue-spool' }],
    })));
    const command = [NODE, CLI, 'start', '-c', file];
    // detached: its own process group, so stopGroup reaches petrel under `script` too.
    const child = terminal
      ? spawn('script', ['-qfec', command.join(' '), '/dev/null'], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(command[0], command.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    running.push(child);
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    return { output: () => text.replace(ANSI, '').replace(/\r/g, ''), raw: () => text, child };
  }

  async function sendOne(port: number): Promise<string> {
    const client = await SmtpTestClient.ready(port);
    const reply = await client.sendMail('someone@example.org', ['postmaster@localhost'], sampleMessage());
    await client.quit();
    return /queued as (\S+)/.exec(reply.raw)?.[1] ?? '';
  }

  it('on a terminal (auto): readable lines with time, level, session and queue id', async () => {
    const { output, child } = start('tty-auto', undefined, true);
    const listening = await eventually(() => /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening on 127\.0\.0\.1:(\d+)/m.exec(output()) ?? undefined, 'a pretty listening line', 20_000);
    const qid = await sendOne(Number(listening[1]));
    const accepted = await eventually(() => output().split('\n').find((line) => line.includes('message accepted')), 'the message accepted line');
    assert.match(accepted, new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: \\[\\S+ ${qid}\\] message accepted \\{"listener":"mx","result":"queued"`));
    assert.ok(!output().split('\n').some((line) => line.startsWith('{')), 'no JSON lines on a terminal');
    await stopGroup(child);
  });

  it('piped (auto): one JSON object a line', async () => {
    const { output, child } = start('piped-auto', undefined, false);
    const line = await eventually(() => output().split('\n').find((l) => l.includes('listening on')), 'a listening line', 20_000);
    const parsed = JSON.parse(line) as { level: string; msg: string; port: number };
    assert.equal(parsed.level, 'info');
    assert.match(parsed.msg, /^listening on 127\.0\.0\.1:/);
    await stopGroup(child);
  });

  it('logging.format forces JSON on a terminal, and pretty lines into a pipe', async () => {
    const json = start('tty-json', 'json', true);
    const line = await eventually(() => json.output().split('\n').find((l) => l.includes('listening on')), 'a listening line', 20_000);
    assert.equal((JSON.parse(line) as { level: string }).level, 'info');
    await stopGroup(json.child);

    const pretty = start('piped-pretty', 'pretty', false);
    const prettyLine = await eventually(() => pretty.output().split('\n').find((l) => l.includes('listening on')), 'a listening line', 20_000);
    assert.match(prettyLine, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening on 127\.0\.0\.1:\d+ \{"listener":"mx"/);
    assert.ok(!pretty.raw().includes('\x1b['), 'no colours into a pipe');
    await stopGroup(pretty.child);
  });
});

/** SIGTERM to the whole process group (script and petrel under it); resolves once it has exited. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  await exited;
}
