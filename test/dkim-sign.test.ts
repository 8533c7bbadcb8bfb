import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { authenticate } from 'mailauth';
import { plainAuth, writeUsers } from './fixtures/auth.js';
import { PETREL_CLI } from './fixtures/petrel-process.js';
import { headerFields } from './fixtures/queued.js';
import { MxWorld } from './harness/mx-world.js';
import type { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * dkim-sign end to end: keys made by `petrel dkim keygen` (the real CLI),
 * their printed DNS records served by the fake DNS, mail signed on its way
 * out through relay-mx, and the copy the receiving sink got verified by
 * mailauth's authenticate() against those records.
 */

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** Runs keygen and returns the key file and the TXT value of the DNS record it printed (quoted strings joined). */
async function keygen(dir: string, domain: string, selector: string, algo: 'rsa' | 'ed25519'): Promise<{ keyFile: string; name: string; txt: string; output: string }> {
  const keyFile = join(dir, `${selector}.key`);
  const { stdout } = await run(process.execPath, [PETREL_CLI, 'dkim', 'keygen', '--domain', domain, '--selector', selector, '--algo', algo, '--out', keyFile, '-c', join(dir, 'none.yaml')]);
  const record = /^(\S+)\. IN TXT ((?:"[^"]*"\s*)+)$/m.exec(stdout);
  assert.ok(record, `keygen printed a zone file line:\n${stdout}`);
  const txt = [...record[2].matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  return { keyFile, name: record[1], txt, output: stdout };
}

interface Setup {
  readonly server: TestServer;
  readonly sink: SinkServer;
  readonly world: MxWorld;
}

async function setup(dir: string, keys: { domain: string; selector: string; keyFile: string }[], signOptions: Record<string, unknown> = {}): Promise<Setup> {
  const world = new MxWorld();
  cleanups.push(() => world.close());
  const sink = await world.host('mx.receiver.test');
  world.domain('receiver.test', [['mx.receiver.test', 10]]);
  const usersFile = await writeUsers(dir, { 'alice@petrel.test': 'alice password' });
  const server = await startTestServer(
    {
      server: { localDomains: ['petrel.test'] },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }],
      delivery: { retry: ['1h'], delayWarningAfter: 0 },
      plugins: [
        { name: 'auth-file', options: { file: usersFile } },
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { name: 'dkim-sign', options: { keys, ...signOptions } },
        { name: 'relay-mx', options: world.relayMxOptions() },
      ],
    },
    { dns: world.dns },
  );
  cleanups.push(() => server.stop());
  return { server, sink, world };
}

/** Sends `message`, logged in as alice when `login`; resolves once the sink has it. */
async function deliver({ server, sink }: Setup, message: string, login: boolean): Promise<string> {
  const before = sink.messages.length;
  const client = await server.client();
  if (login) await client.command(plainAuth('alice@petrel.test', 'alice password'), /^235 /);
  const reply = await client.sendMail('alice@petrel.test', ['bob@receiver.test'], message);
  assert.match(reply.raw, /^250 /);
  await client.quit();
  await sink.waitUntil((messages) => messages.length > before);
  return sink.messages[before].data.toString('utf8');
}

function verify(world: MxWorld, message: string) {
  return authenticate(message, {
    ip: '192.0.2.1',
    helo: 'mx.petrel.test',
    sender: 'alice@petrel.test',
    mta: 'mx.receiver.test',
    resolver: (name: string, type: string) => world.dns.resolve(name, type as 'TXT') as Promise<string[][]>,
    disableBimi: true,
  });
}

describe('dkim-sign', () => {
  it('signs with the RSA and Ed25519 keys keygen made; both verify against the records it printed', async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    const rsa = await keygen(dir.path, 'petrel.test', 'rsa2026', 'rsa');
    const ed = await keygen(dir.path, 'petrel.test', 'ed2026', 'ed25519');
    assert.equal(rsa.name, 'rsa2026._domainkey.petrel.test');
    assert.match(rsa.txt, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
    assert.match(ed.txt, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
    assert.match(ed.output, /keyFile: /, 'keygen shows the config lines that use the key');
    assert.equal(statSync(ed.keyFile).mode & 0o777, 0o600, 'the private key is readable by its owner only');

    const made = await setup(dir.path, [
      { domain: 'petrel.test', selector: 'rsa2026', keyFile: rsa.keyFile },
      { domain: 'petrel.test', selector: 'ed2026', keyFile: ed.keyFile },
    ]);
    made.world.dns.set(rsa.name, { TXT: [[rsa.txt]] }).set(ed.name, { TXT: [[ed.txt]] });

    const signed = await deliver(made, sampleMessage({ from: 'Alice <alice@petrel.test>', to: 'bob@receiver.test', subject: 'signed twice' }), true);
    const fields = headerFields(signed);
    assert.match(fields[0], /^DKIM-Signature: .*a=rsa-sha256/, 'signatures go on top, in the order of the keys');
    assert.match(fields[1], /^DKIM-Signature: .*a=ed25519-sha256/);
    const { dkim } = await verify(made.world, signed);
    const outcome = dkim.results.map((r) => [r.signingDomain, r.selector, r.status.result]);
    assert.deepEqual(outcome, [
      ['petrel.test', 'rsa2026', 'pass'],
      ['petrel.test', 'ed2026', 'pass'],
    ]);

    // Not logged in and not from a listed network: not ours to vouch for.
    const unsigned = await deliver(made, sampleMessage({ from: 'alice@petrel.test', to: 'bob@receiver.test' }), false);
    assert.ok(!/^DKIM-Signature:/im.test(unsigned));
  });

  it('keygen makes RSA 2048 by default, and with --algo both one key of each that dkim-sign signs with', async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    const config = join(dir.path, 'mta.config.yaml');
    writeFileSync(config, 'server: { hostname: mx.petrel.test, dataDir: ./state, localDomains: [petrel.test] }\nlisteners: [{ name: mx, port: 0, tls: none }]\nplugins: [{ name: queue-spool }]\n');
    const keygenArgs = (...more: string[]) => [PETREL_CLI, 'dkim', 'keygen', '--domain', 'petrel.test', '-c', config, ...more];

    const plain = await run(process.execPath, keygenArgs('--selector', 'plain'));
    const plainKey = createPrivateKey(readFileSync(join(dir.path, 'state', 'dkim', 'petrel.test', 'plain.key')));
    assert.equal(plainKey.asymmetricKeyType, 'rsa');
    assert.equal(plainKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.match(plain.stdout, /\(rsa, 2048 bits\)/);

    const both = await run(process.execPath, keygenArgs('--selector', 'k2026', '--algo', 'both'));
    const records = [...both.stdout.matchAll(/^(\S+)\. IN TXT ((?:"[^"]*"\s*)+)$/gm)].map((m) => ({ name: m[1], txt: [...m[2].matchAll(/"([^"]*)"/g)].map((q) => q[1]).join('') }));
    assert.deepEqual(records.map((r) => r.name), ['k2026-rsa._domainkey.petrel.test', 'k2026-ed25519._domainkey.petrel.test']);
    const keys = [...both.stdout.matchAll(/- \{ domain: (\S+), selector: (\S+), keyFile: (\S+) \}/g)].map((m) => ({ domain: m[1], selector: m[2], keyFile: join(dir.path, m[3]) }));
    assert.deepEqual(keys.map((k) => k.keyFile), [join(dir.path, 'state/dkim/petrel.test/k2026-rsa.key'), join(dir.path, 'state/dkim/petrel.test/k2026-ed25519.key')], 'config lines relative to the config file');

    const again = await run(process.execPath, keygenArgs('--selector', 'k2026', '--algo', 'both')).catch((error: { code: number; stderr: string }) => error);
    assert.equal((again as { code: number }).code, 1);
    assert.match((again as { stderr: string }).stderr, /petrel dkim: .*k2026-rsa\.key exists already/);

    const made = await setup(dir.path, keys);
    for (const record of records) made.world.dns.set(record.name, { TXT: [[record.txt]] });
    const signed = await deliver(made, sampleMessage({ from: 'Alice <alice@petrel.test>', to: 'bob@receiver.test', subject: 'both' }), true);
    const { dkim } = await verify(made.world, signed);
    assert.deepEqual(
      dkim.results.map((r) => [r.selector, r.algo, r.status.result]),
      [
        ['k2026-rsa', 'rsa-sha256', 'pass'],
        ['k2026-ed25519', 'ed25519-sha256', 'pass'],
      ],
    );
  });

  it('refuses to start with a key file it cannot use, saying which and how to make one', async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    await assert.rejects(
      setup(dir.path, [{ domain: 'petrel.test', selector: 's1', keyFile: join(dir.path, 'missing.key') }]),
      /dkim-sign: cannot read the DKIM key for petrel\.test \(selector s1\) at .*missing\.key: ENOENT; create one with: npx petrel dkim keygen --domain petrel\.test --selector s1/,
    );
  });

  it('produces the RFC 8463 body hash with the RFC key, signs the configured headers, and its DNS record verifies', async () => {
    const dir = tempDir();
    cleanups.push(async () => dir.remove());
    // The RFC's Ed25519 private key is a 32-byte seed; PKCS#8 wraps it with a fixed prefix.
    const seed = Buffer.from('nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=', 'base64');
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const keyFile = join(dir.path, 'brisbane.key');
    writeFileSync(keyFile, createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string);
    const made = await setup(dir.path, [{ domain: 'football.example.com', selector: 'brisbane', keyFile }], {
      origins: { networks: ['127.0.0.0/8'] },
      headers: ['From', 'To', 'Subject', 'Date', 'Message-ID'],
    });
    made.world.dns.set('brisbane._domainkey.football.example.com', { TXT: [['v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=']] });
    const rfcMessage = readFileSync(new URL('../../test/fixtures/dkim-rfc8463/signed.eml', import.meta.url), 'utf8').replace(/^DKIM-Signature:[^]*?\r?\n(?=[^ \t])/gm, '');
    const signed = await deliver(made, rfcMessage, false);
    const signature = headerFields(signed)[0];
    assert.match(signature, /d=football\.example\.com;/);
    assert.match(signature, /bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;/, 'the body went out unchanged: the RFC body hash');
    const signedHeaders = /;h=([^;]+);/.exec(signature.replace(/\s+/g, ''))![1].toLowerCase().split(':').sort();
    assert.deepEqual(signedHeaders, ['date', 'from', 'message-id', 'subject', 'to'], 'the configured header list');
    const { dkim } = await verify(made.world, signed);
    assert.equal(dkim.results[0].status.result, 'pass');
  });
});
