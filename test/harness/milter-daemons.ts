import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './eventually.js';
import { sparePort } from './ports.js';

const run = promisify(execFile);

/**
 * Real milter daemons on loopback, each with its own config in a temp dir,
 * started in the foreground and stopped by pid. A missing program makes the
 * start fail (spawn ENOENT), so a test that needs it fails loudly.
 */
export interface Daemon {
  /** The milter's socket as the milter plugin's options write it. */
  readonly socket: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts `program args`, collects its output, and waits until `port` accepts connections. */
async function startDaemon(program: string, args: readonly string[], port: number, what: string, timeoutMs = 60_000): Promise<{ child: ChildProcess; output: () => string; stop: () => Promise<void> }> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited: string | undefined;
  const spawnError = new Promise<never>((_resolve, reject) => {
    child.once('error', (error) => reject(new Error(`${what}: cannot run ${program}: ${error.message}`)));
  });
  child.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
  spawnError.catch(() => undefined);
  await Promise.race([
    spawnError,
    eventually(
      async () => {
        if (exited) throw new Error(`${what} ${exited} before listening:\n${output}`);
        return (await accepts(port)) || undefined;
      },
      `${what} to listen on port ${port}`,
      timeoutMs,
    ),
  ]).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n${output}`);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  };
  return { child, output: () => output, stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface OpenDkim extends Daemon {
  /** The DNS name and TXT value of the key opendkim-genkey made. */
  readonly record: { readonly name: string; readonly txt: string };
}

/** opendkim in signing mode for `domain`, with a key made by opendkim-genkey in `dir`. */
export async function startOpenDkim(dir: string, domain: string, selector: string, extraConfig = ''): Promise<OpenDkim> {
  await run('opendkim-genkey', ['-D', dir, '-d', domain, '-s', selector, '-b', '2048']);
  const txtFile = readFileSync(join(dir, `${selector}.txt`), 'utf8');
  const txt = [...txtFile.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  const port = await sparePort();
  const config = join(dir, 'opendkim.conf');
  writeFileSync(
    config,
    [
      'Mode s',
      `Socket inet:${port}@127.0.0.1`,
      'Background no',
      `Domain ${domain}`,
      `KeyFile ${join(dir, `${selector}.private`)}`,
      `Selector ${selector}`,
      'Syslog no',
      'UserID root',
      `PidFile ${join(dir, 'opendkim.pid')}`,
      'InternalHosts 127.0.0.1',
      'RequireSafeKeys no',
      extraConfig,
    ].join('\n'),
  );
  const daemon = await startDaemon('opendkim', ['-f', '-x', config], port, 'opendkim');
  return { socket: `inet:${port}@127.0.0.1`, output: daemon.output, stop: daemon.stop, record: { name: `${selector}._domainkey.${domain}`, txt } };
}

/**
 * clamd with a signature database made here (clamd cannot download any):
 * an MD5 signature of `virus` named `signature`, and clamav-milter in front
 * of it, refusing infected mail with a reply that names what it found.
 */
export async function startClamavMilter(dir: string, virus: Buffer, signature: string): Promise<{ milter: Daemon; clamd: Daemon }> {
  const databases = join(dir, 'db');
  await run('mkdir', ['-p', databases]);
  const { createHash } = await import('node:crypto');
  writeFileSync(join(databases, 'petrel-test.hdb'), `${createHash('md5').update(virus).digest('hex')}:${virus.length}:${signature}\n`);
  const clamdPort = await sparePort();
  const clamdConfig = join(dir, 'clamd.conf');
  writeFileSync(
    clamdConfig,
    [`TCPSocket ${clamdPort}`, 'TCPAddr 127.0.0.1', `DatabaseDirectory ${databases}`, 'Foreground yes', `LogFile ${join(dir, 'clamd.log')}`, 'User root', `PidFile ${join(dir, 'clamd.pid')}`, `TemporaryDirectory ${dir}`].join('\n'),
  );
  const clamd = await startDaemon('clamd', ['--config-file', clamdConfig], clamdPort, 'clamd', 120_000);
  const milterPort = await sparePort();
  const milterConfig = join(dir, 'clamav-milter.conf');
  writeFileSync(
    milterConfig,
    [
      `MilterSocket inet:${milterPort}@127.0.0.1`,
      `ClamdSocket tcp:127.0.0.1:${clamdPort}`,
      'Foreground yes',
      'User root',
      `PidFile ${join(dir, 'clamav-milter.pid')}`,
      `LogFile ${join(dir, 'clamav-milter.log')}`,
      'OnInfected Reject',
      'RejectMsg Virus found: %v',
      'AddHeader Replace',
      `TemporaryDirectory ${dir}`,
    ].join('\n'),
  );
  const milter = await startDaemon('clamav-milter', ['--config-file', milterConfig], milterPort, 'clamav-milter');
  const stopBoth = async () => {
    await milter.stop();
    await clamd.stop();
  };
  return {
    milter: { socket: `inet:${milterPort}@127.0.0.1`, output: milter.output, stop: stopBoth },
    clamd: { socket: `tcp:127.0.0.1:${clamdPort}`, output: clamd.output, stop: clamd.stop },
  };
}
