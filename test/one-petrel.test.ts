import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, after, describe, it } from 'node:test';
import { PETREL_CLI, REPO_ROOT } from './fixtures/petrel-process.js';
import { runProcess, type ProcessRun } from './harness/run-process.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * A plugin package and Petrel are separate packages, and npm may well give
 * the plugin a Petrel (and a tsyringe) of its own. Here a site holds a
 * second, real copy of Petrel and of tsyringe in node_modules, the way a
 * plugin's peer dependency gets installed. The plugin's `import 'petrel'`
 * must reach the running Petrel all the same (one container, so its
 * @inject decorators count); a copy loaded anyway is named, with the fix.
 */

const temp = tempDir();
after(() => temp.remove());
const site = join(temp.path, 'site');
const modules = join(site, 'node_modules');

/** A plugin package in the site: plain JavaScript using decorators as tsc emits them, importing its Petrel as `imports` says. */
function pluginPackage(name: string, imports: string): void {
  const dir = join(modules, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', exports: './index.js', peerDependencies: { petrel: '*' } }));
  writeFileSync(
    join(dir, 'index.js'),
    `${imports}
export default class Probe {
  static meta = { name: '${name}', version: '1.0.0' };
  constructor(options, logger) { this.options = options; this.logger = logger; }
  register(hooks) { hooks.on('message', () => ({ kind: 'next' })); }
}
inject(TOKENS.PluginOptions)(Probe, undefined, 0);
inject(TOKENS.Logger)(Probe, undefined, 1);
injectable()(Probe);
`,
  );
}

function checkConfig(plugin: string): Promise<ProcessRun> {
  const file = join(site, `${plugin}.yaml`);
  writeFileSync(file, `server: { hostname: mx.petrel.test, dataDir: ./data }\nlisteners: [{ name: mx, port: 0, tls: none }]\nplugins: [{ package: ${plugin} }, { name: queue-spool }]\n`);
  return runProcess(process.execPath, [PETREL_CLI, 'check-config', '-c', file], { cwd: temp.path });
}

describe('one Petrel and one tsyringe per process, whatever npm installed', () => {
  before(() => {
    // The copy: Petrel's compiled core and package.json, its own tsyringe, the other dependencies shared.
    const copy = join(modules, 'petrel');
    cpSync(join(REPO_ROOT, 'dist', 'core'), join(copy, 'dist', 'core'), { recursive: true });
    cpSync(join(REPO_ROOT, 'package.json'), join(copy, 'package.json'));
    cpSync(join(REPO_ROOT, 'node_modules', 'tsyringe'), join(copy, 'node_modules', 'tsyringe'), { recursive: true });
    for (const dependency of readdirSync(join(REPO_ROOT, 'node_modules'))) {
      if (dependency !== 'tsyringe' && !dependency.startsWith('.')) symlinkSync(join(REPO_ROOT, 'node_modules', dependency), join(modules, dependency));
    }
    pluginPackage('petrel-plugin-by-name', "import { inject, injectable, TOKENS } from 'petrel';");
    pluginPackage('petrel-plugin-by-path', "import { inject, injectable, TOKENS } from '../petrel/dist/core/index.js';");
    pluginPackage(
      'petrel-plugin-own-tsyringe',
      "import { createRequire } from 'node:module';\nimport { TOKENS } from 'petrel';\nconst { inject, injectable } = createRequire(import.meta.url)('../petrel/node_modules/tsyringe');",
    );
  });

  it('a plugin importing petrel by name gets the running Petrel, though a copy sits in its node_modules', async () => {
    const result = await checkConfig('petrel-plugin-by-name');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /ok \(1 listeners; plugins: petrel-plugin-by-name@1\.0\.0, queue-spool@/);
  });

  it('a copy loaded anyway (by file path) stops the boot, naming both copies and the fix', async () => {
    const result = await checkConfig('petrel-plugin-by-path');
    assert.equal(result.code, 78, 'a config error (EX_CONFIG)');
    assert.ok(result.stderr.includes(`two copies of Petrel are loaded: the one running (${REPO_ROOT}) and ${join(modules, 'petrel')}/, loaded by plugin npm:petrel-plugin-by-path`), result.stderr);
    assert.match(result.stderr, /import petrel by its package name \(not by a file path\), declare it in peerDependencies rather than dependencies, and remove the extra copy/);
  });

  it('decorators from another tsyringe: the error says so instead of asking for decorators that are there', async () => {
    const result = await checkConfig('petrel-plugin-own-tsyringe');
    assert.equal(result.code, 78, 'a config error (EX_CONFIG)');
    assert.match(result.stderr, /plugin petrel-plugin-own-tsyringe: its constructor has @inject decorators, but Petrel's container does not know the class: mark it @injectable\(\), and import inject and injectable from 'petrel' \(not from 'tsyringe'/);
  });
});
