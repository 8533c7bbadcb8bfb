import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfigFile } from '../core/config/load.js';
import { PETREL_CLI, REPO_ROOT } from './fixtures/petrel-process.js';
import { runProcess, type ProcessRun } from './harness/run-process.js';
import { tempDir } from './harness/temp-dir.js';

/** `petrel init` and `petrel plugin new` in this checkout; test/installed-package.test.ts runs them installed. */

const temp = tempDir();
after(() => temp.remove());

function petrel(...args: string[]): Promise<ProcessRun> {
  return runProcess(process.execPath, [PETREL_CLI, ...args], { cwd: temp.path });
}

describe('petrel init', () => {
  it('writes the shipped profile for the host and domain, data/, and a package.json linking this Petrel', async () => {
    const site = join(temp.path, 'site');
    const made = await petrel('init', site, '--hostname', 'MX.Example.ORG.', '--domain', 'example.org');
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^ {2}petrel start -c .*site\/mta\.config\.yaml$/m);
    const { config } = await loadConfigFile(join(site, 'mta.config.yaml'));
    assert.equal(config.server.hostname, 'mx.example.org');
    assert.deepEqual(config.server.localDomains, ['example.org']);
    const shipped = (await loadConfigFile(join(REPO_ROOT, 'mta.config.yaml'))).config;
    assert.deepEqual(config.plugins, shipped.plugins, 'the same profile');
    assert.deepEqual(config.listeners, shipped.listeners);

    const text = readFileSync(join(site, 'mta.config.yaml'), 'utf8');
    assert.match(text, /^ {2}hostname: mx\.example\.org {5}# our name in the greeting/m, 'comments kept, in their column');
    assert.match(text, /^ {2}localDomains: \[example\.org\] {2}# mail for these domains/m);
    assert.match(text, /auth-file +# AUTH from \.\/data\/users: petrel user add you@example\.org$/m, 'examples speak of the site');
    assert.ok(text.includes(`$schema=${REPO_ROOT}docs/mta.config.schema.json`), 'editors find the schema of this Petrel');
    assert.ok(existsSync(join(site, 'data')));
    const manifest = JSON.parse(readFileSync(join(site, 'package.json'), 'utf8')) as { private: boolean; dependencies: Record<string, string> };
    assert.equal(manifest.private, true);
    assert.deepEqual(manifest.dependencies, { petrel: `file:${REPO_ROOT.replace(/\/$/, '')}` });
  });

  it('takes the domain from the host name, refuses to overwrite a config without --force, keeps an existing package.json', async () => {
    const site = join(temp.path, 'again');
    mkdirSync(site);
    writeFileSync(join(site, 'package.json'), '{"name":"mine","private":true}\n');
    assert.equal((await petrel('init', site, '--hostname', 'smtp.mail.example.net')).code, 0);
    assert.deepEqual((await loadConfigFile(join(site, 'mta.config.yaml'))).config.server.localDomains, ['mail.example.net']);
    assert.equal(readFileSync(join(site, 'package.json'), 'utf8'), '{"name":"mine","private":true}\n');

    const refused = await petrel('init', site, '--hostname', 'other.example.net');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /mta\.config\.yaml exists already \(--force replaces it; data\/ is left alone\)/);
    assert.equal((await petrel('init', site, '--hostname', 'other.example.net', '--force')).code, 0);
    assert.equal((await loadConfigFile(join(site, 'mta.config.yaml'))).config.server.hostname, 'other.example.net');
  });

  it('says what is wrong with a bad name, and how to call it', async () => {
    const bad = await petrel('init', join(temp.path, 'bad'), '--hostname', 'not a host');
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /^petrel: init: --hostname not a host is not a host name\nusage: petrel init DIR/);
    const usage = await petrel('init');
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /^petrel: init: which directory\?\nusage: petrel init DIR/);
  });
});

describe('petrel plugin new', () => {
  it('writes a package named after the plugin in ./NAME, with petrel as peer and dev dependency', async () => {
    const made = await petrel('plugin', 'new', '@acme/petrel-plugin-tag-it');
    assert.equal(made.code, 0, made.stderr);
    const dir = join(temp.path, 'petrel-plugin-tag-it');
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | string>;
    assert.equal(manifest.name, '@acme/petrel-plugin-tag-it');
    assert.equal(manifest.type, 'module');
    assert.deepEqual(manifest.peerDependencies, { petrel: '^0.1.0' });
    assert.equal((manifest.devDependencies as Record<string, string>).petrel, '^0.1.0');
    assert.match((manifest.scripts as Record<string, string>).test, /node --test/);
    const source = readFileSync(join(dir, 'src', 'index.ts'), 'utf8');
    assert.match(source, /export default class TagIt \{/);
    assert.match(source, /name: 'tag-it'/);
    assert.match(source, /from 'petrel';/);
    assert.match(readFileSync(join(dir, 'test', 'plugin.test.ts'), 'utf8'), /from 'petrel\/testing'/);
    assert.match(readFileSync(join(dir, 'tsconfig.json'), 'utf8'), /"experimentalDecorators": true,\n\s+"emitDecoratorMetadata": true/);
  });

  it('refuses a name npm would refuse and a directory that is not empty', async () => {
    const bad = await petrel('plugin', 'new', 'Not A Name');
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /"Not A Name" is not an npm package name/);
    const full = join(temp.path, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    const refused = await petrel('plugin', 'new', 'petrel-plugin-x', '--dir', full);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /full is not empty; choose another with --dir/);
  });
});
