import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import { REPO_ROOT } from './fixtures/petrel-process.js';
import { ChildPetrel } from './harness/child-petrel.js';
import { waitForMail } from './harness/maildir.js';
import { runProcess, type ProcessRun } from './harness/run-process.js';
import { sampleMessage, SmtpTestClient } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * Petrel outside its checkout, as a new user meets it: the package `npm
 * pack` makes, installed into an empty prefix; `petrel init` making a site;
 * a plugin scaffolded with `petrel plugin new` in a directory of its own,
 * built and tested, packed and installed into the site; Petrel started from
 * elsewhere with the plugin enabled by package name; a message over SMTP
 * that arrives in a mailbox carrying the plugin's header. Real processes,
 * the machine's own node and npm (dependencies come from the npm cache or
 * the registry), nothing from this repository but the tarball.
 */

const temp = tempDir('petrel-installed-');
after(() => temp.remove());

const TARBALL_VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const prefix = join(temp.path, 'prefix');
const site = join(temp.path, 'site');
const pluginDir = join(temp.path, 'stamp');
const petrelBin = join(prefix, 'bin', 'petrel');

/**
 * The environment of someone at a shell on this machine: PATH without this
 * repository's node_modules/.bin (so `node` is the machine's, whatever its
 * version), none of the npm_* variables `npm test` sets and not the
 * NODE_TEST_CONTEXT by which node --test recognises its own children (the
 * plugin's `node --test` would report to ours instead of printing), with the
 * installed Petrel's bin first.
 */
function userEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const runnerOnly = new Set(['INIT_CWD', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT']);
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key) && !runnerOnly.has(key)) env[key] = value;
  const path = (process.env.PATH ?? '').split(delimiter).filter((entry) => entry !== '' && !entry.startsWith(REPO_ROOT));
  env.PATH = [join(prefix, 'bin'), ...path].join(delimiter);
  return env;
}

function run(file: string, args: readonly string[], options: { cwd: string; input?: string; env?: NodeJS.ProcessEnv }): Promise<ProcessRun> {
  return runProcess(file, args, { ...options, env: options.env ?? userEnvironment() });
}

/** Runs and insists on exit 0, showing everything it printed otherwise. */
async function ok(file: string, args: readonly string[], options: { cwd: string; input?: string }): Promise<ProcessRun> {
  const result = await run(file, args, options);
  assert.equal(result.code, 0, `${file} ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

const npm = (args: readonly string[], cwd: string) => ok('npm', ['--no-audit', '--no-fund', '--prefer-offline', ...args], { cwd });
/** The installed `petrel`, run from the temp directory (not the site, not this repository). */
const petrel = (args: readonly string[], options: { input?: string } = {}) => run(petrelBin, args, { cwd: temp.path, input: options.input });

describe('the installed package', () => {
  let packedFiles: string[] = [];

  before(async () => {
    // The suite's build (npm test builds first) is what gets packed; prepack would only build it again.
    const packed = await ok('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', temp.path], { cwd: REPO_ROOT });
    packedFiles = (JSON.parse(packed.stdout) as { files: { path: string }[] }[])[0].files.map((file) => file.path);
    await npm(['install', '--global', '--prefix', prefix, join(temp.path, `petrel-${TARBALL_VERSION}.tgz`)], temp.path);
  });

  it('ships the compiled code, the launcher, the docs and the shipped config, and nothing to build', () => {
    for (const file of ['bin/petrel.cjs', 'bin/sendmail.cjs', 'bin/launch.cjs', 'docs/systemd/petrel.service', 'dist/core/index.js', 'dist/core/index.d.ts', 'dist/core/cli/petrel.js', 'dist/core/delivery/index.js', 'dist/core/queue/index.js', 'dist/plugins/relay-access/index.js', 'dist/test/harness/index.js', 'mta.config.yaml', 'docs/mta.config.schema.json', 'docs/writing-a-plugin.md', 'plugins/dkim-sign/README.md', 'package.json']) {
      assert.ok(packedFiles.includes(file), `${file} is in the package`);
    }
    const unwanted = packedFiles.filter((file) => /\.map$|\.test\.js$|^dist\/(bench|examples)\/|^(core|test|bench)\/|^plugins\/.*\.ts$/.test(file) || (file.endsWith('.ts') && !file.endsWith('.d.ts')));
    assert.deepEqual(unwanted, [], 'no sources, tests, source maps or benchmarks');
    const manifest = JSON.parse(readFileSync(join(prefix, 'lib', 'node_modules', 'petrel', 'package.json'), 'utf8')) as { scripts: Record<string, string>; private?: boolean };
    assert.equal(manifest.private, undefined);
    assert.deepEqual(Object.keys(manifest.scripts).filter((script) => /^(pre|post)?install$|^prepare$/.test(script)), [], 'nothing runs at install time');
  });

  it('petrel --version runs on the machine’s node, bringing Node.js 24 when that one is too old', async () => {
    const machine = await ok('node', ['--version'], { cwd: temp.path });
    const version = await petrel(['--version']);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, new RegExp(`^petrel ${TARBALL_VERSION.replaceAll('.', '\\.')} \\(Node\\.js v(2[2-9]|[3-9]\\d)\\.`));
    const [major, minor] = machine.stdout.trim().slice(1).split('.').map(Number);
    if (major < 22 || (major === 22 && minor < 19)) assert.doesNotMatch(version.stdout, new RegExp(`\\(Node\\.js ${machine.stdout.trim()}\\)`), 'an old node hands over to the bundled one');
  });

  it('the sendmail command is installed beside petrel and runs the same way', async () => {
    const help = await run(join(prefix, 'bin', 'sendmail'), ['--help'], { cwd: temp.path });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: sendmail \[-t\] \[-i\]/);
  });

  it('on a Node.js older than it supports, and none brought along, it says so in one line', async () => {
    // The launcher beside a package.json asking for a Node.js from the future, without the bundled one.
    const bare = join(temp.path, 'bare');
    cpSync(join(prefix, 'lib', 'node_modules', 'petrel', 'bin'), join(bare, 'bin'), { recursive: true });
    writeFileSync(join(bare, 'package.json'), JSON.stringify({ name: 'petrel', version: TARBALL_VERSION, engines: { node: '>=99.1' } }));
    for (const node of ['node', process.execPath]) {
      const result = await run(node, [join(bare, 'bin', 'petrel.cjs'), '--version'], { cwd: temp.path });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^petrel: needs Node\.js 99\.1 or newer, this is v\d+\.\d+\.\d+ \(install Node\.js 24 LTS, or reinstall petrel with its optional dependencies so it brings its own\)\n$/);
    }
  });

  it('petrel init makes a site; a plugin made by petrel plugin new builds, passes its test, installs there and stamps mail', async () => {
    const init = await petrel(['init', site, '--hostname', 'mx.example.org', '--domain', 'example.org']);
    assert.equal(init.code, 0, init.stderr);
    const config = join(site, 'mta.config.yaml');
    assert.ok(existsSync(join(site, 'data')) && existsSync(join(site, 'package.json')));
    const shipped = parseDocument(readFileSync(config, 'utf8'));
    assert.equal(shipped.getIn(['server', 'hostname']), 'mx.example.org');
    assert.deepEqual((shipped.toJS() as { server: { localDomains: string[] } }).server.localDomains, ['example.org']);
    assert.match(readFileSync(config, 'utf8'), /# .*petrel user add you@example\.org/, 'the comments are kept, speaking of the site');

    const scaffold = await petrel(['plugin', 'new', 'petrel-plugin-stamp', '--dir', pluginDir]);
    assert.equal(scaffold.code, 0, scaffold.stderr);
    for (const file of ['package.json', 'tsconfig.json', 'src/index.ts', 'test/plugin.test.ts', 'README.md']) assert.ok(existsSync(join(pluginDir, file)), `${file} scaffolded`);
    const tarball = join(temp.path, `petrel-${TARBALL_VERSION}.tgz`);
    await npm(['install', '--save-dev', tarball], pluginDir);
    const tested = await npm(['test'], pluginDir);
    assert.match(tested.stdout, /ℹ pass 2\b/);
    assert.match(tested.stdout, /ℹ fail 0\b/);
    await npm(['pack', '--ignore-scripts', '--pack-destination', temp.path], pluginDir);
    await npm(['install', join(temp.path, 'petrel-plugin-stamp-0.1.0.tgz')], site);

    // Loopback on free ports, no admin listener, and the plugin enabled by its package name.
    const document = parseDocument(readFileSync(config, 'utf8'));
    document.setIn(['listeners'], document.createNode([{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }]));
    document.deleteIn(['admin']);
    // Started as root (CI), petrel refuses to run without server.user; this test is not about privileges (see runnableAsRoot).
    if (process.getuid?.() === 0) document.setIn(['server', 'user'], 'root');
    const plugins = document.getIn(['plugins']) as { items: unknown[] };
    plugins.items.unshift(document.createNode({ package: 'petrel-plugin-stamp', options: { header: 'X-Stamped-By', text: 'the stamp plugin' } }));
    writeFileSync(config, document.toString());

    const checked = await petrel(['check-config', '-c', config]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /plugins: stamp@0\.1\.0, /);

    const server = await ChildPetrel.startFile(config, { program: { file: petrelBin, args: [] }, cwd: temp.path, baseEnv: userEnvironment() });
    try {
      const client = await SmtpTestClient.ready(server.port('mx'));
      const reply = await client.sendMail('someone@example.net', ['postmaster@example.org'], sampleMessage({ from: 'someone@example.net', to: 'postmaster@example.org', subject: 'stamped?' }));
      assert.match(reply.raw, /^250 /);
      await client.quit();
      const [delivered] = await waitForMail(join(site, 'data', 'maildir', 'postmaster'), 1, 30_000);
      assert.match(delivered, /^X-Stamped-By: the stamp plugin\r?$/m);
      assert.match(delivered, /^Subject: stamped\?\r?$/m);
    } finally {
      await server.stop();
    }
    assert.deepEqual(await server.exited(), { code: 0, signal: null }, 'SIGTERM through the launcher is a clean shutdown');
  });

  it('petrel --help names the plugin of each plugin command; user, dkim and limits work from the installed package', async () => {
    const config = join(site, 'mta.config.yaml');
    const help = await petrel(['--help', '-c', config]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^ {2}auth-file\n {4}user add\|passwd LOGIN/m);
    assert.match(help.stdout, /^ {2}dkim-sign \(not enabled in .*\)\n {4}dkim keygen /m);
    assert.match(help.stdout, /^ {2}rate-limit \(not enabled in .*\)\n {4}limits show\|reset /m);

    const added = await petrel(['user', 'add', 'you@example.org', '--password-stdin', '-c', config], { input: 'a long enough password\n' });
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), `added you@example.org (${join(site, 'data', 'users')})`);
    assert.equal((await petrel(['user', 'list', '-c', config])).stdout.trim(), 'you@example.org');

    const keygen = await petrel(['dkim', 'keygen', '--domain', 'example.org', '--selector', 's1', '-c', config]);
    assert.equal(keygen.code, 0, keygen.stderr);
    assert.match(keygen.stdout, /^wrote .*data\/dkim\/example\.org\/s1\.key \(rsa, 2048 bits\)$/m);

    const limits = await petrel(['limits', 'show', '192.0.2.1', '-c', config]);
    assert.equal(limits.code, 1);
    assert.match(limits.stdout, /the rate-limit plugin is not enabled/);
  });
});
