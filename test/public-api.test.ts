import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from './fixtures/petrel-process.js';

/**
 * The public API is what the built-in plugins use: a built-in imports only
 * Petrel's public entry points (package.json "exports"), its own files, Node
 * and other npm packages, so every built-in is proof that a plugin of
 * someone else's could do the same. And the core knows no plugin: not the
 * server, not the CLI (plugins bring their commands).
 */

const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string> };
/** `petrel`, `petrel/delivery`...: every export but the test harness, which is for tests, not plugins. */
const ENTRY_POINTS = new Set(Object.keys(PACKAGE.exports).filter((key) => key !== './package.json' && key !== './testing').map((key) => `petrel${key.slice(1)}`));
/** Petrel re-exports these (inject, injectable, z): a plugin taking its own copy would register its decorators in another tsyringe. */
const SHARED_THROUGH_PETREL = new Set(['tsyringe', 'zod', 'reflect-metadata']);

function sourceFiles(directory: string): string[] {
  return readdirSync(join(REPO_ROOT, directory), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => join(REPO_ROOT, directory, file));
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((imported) => imported.fileName);
}

const isRelative = (specifier: string) => specifier.startsWith('./') || specifier.startsWith('../');
const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/** Why a plugin file may not import `specifier`, or undefined when it may. */
function pluginImportProblem(file: string, pluginDir: string, specifier: string): string | undefined {
  if (isRelative(specifier)) {
    const target = resolve(dirname(file), specifier);
    return target.startsWith(pluginDir + sep) ? undefined : `reaches outside its folder to ${relative(REPO_ROOT, target)}`;
  }
  if (specifier.startsWith('/') || specifier.startsWith('file:')) return 'imports by absolute path';
  if (specifier.startsWith('node:') || builtinModules.includes(specifier)) return undefined;
  if (packageOf(specifier) === 'petrel') return ENTRY_POINTS.has(specifier) ? undefined : `is not a public entry point (${[...ENTRY_POINTS].join(', ')})`;
  if (SHARED_THROUGH_PETREL.has(packageOf(specifier))) return `comes from Petrel: import it from 'petrel'`;
  return undefined;
}

describe('the public API is what the built-in plugins use', () => {
  it('finds the plugins and their imports', () => {
    const files = sourceFiles('plugins');
    assert.ok(files.length > 50, `plugin sources found: ${files.length}`);
    assert.ok(files.some((file) => importsOf(file).includes('petrel')), 'plugins import petrel');
  });

  for (const directory of ['plugins', 'examples']) {
    it(`no file under ${directory}/ imports core/, another plugin's files, tsyringe or zod`, () => {
      const problems: string[] = [];
      for (const file of sourceFiles(directory)) {
        const [plugin] = relative(join(REPO_ROOT, directory), file).split(sep);
        const pluginDir = join(REPO_ROOT, directory, plugin);
        for (const specifier of importsOf(file)) {
          const problem = pluginImportProblem(file, pluginDir, specifier);
          if (problem) problems.push(`${relative(REPO_ROOT, file)}: '${specifier}' ${problem}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }

  it('the check itself catches a relative import into core/ and an internal petrel path', () => {
    const file = join(REPO_ROOT, 'plugins', 'greylist', 'index.ts');
    const dir = join(REPO_ROOT, 'plugins', 'greylist');
    assert.match(pluginImportProblem(file, dir, '../../core/util/networks.js') ?? '', /reaches outside its folder to core/);
    assert.match(pluginImportProblem(file, dir, '../relay-access/index.js') ?? '', /reaches outside its folder to plugins/);
    assert.match(pluginImportProblem(file, dir, 'petrel/dist/core/index.js') ?? '', /not a public entry point/);
    assert.match(pluginImportProblem(file, dir, 'petrel/testing') ?? '', /not a public entry point/);
    assert.match(pluginImportProblem(file, dir, 'tsyringe') ?? '', /import it from 'petrel'/);
    assert.equal(pluginImportProblem(file, dir, 'petrel/delivery'), undefined);
    assert.equal(pluginImportProblem(file, dir, './triplet.js'), undefined);
    assert.equal(pluginImportProblem(file, dir, 'mailauth'), undefined);
  });

  it('no file under core/ imports a plugin (the CLI finds plugin commands through the plugins)', () => {
    const plugins = join(REPO_ROOT, 'plugins') + sep;
    const problems: string[] = [];
    for (const file of sourceFiles('core')) {
      for (const specifier of importsOf(file)) {
        if (isRelative(specifier) && resolve(dirname(file), specifier).startsWith(plugins)) problems.push(`${relative(REPO_ROOT, file)}: '${specifier}'`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
