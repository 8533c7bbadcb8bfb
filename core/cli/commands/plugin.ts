import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { PACKAGE_ROOT, PETREL_VERSION } from '../../version.js';
import type { CliContext } from '../petrel.js';
import { PACKAGE_NAME, pluginNameOf, scaffoldFiles } from '../plugin-scaffold.js';

const USAGE = 'usage: petrel plugin new NAME [--dir DIR]   (NAME: an npm package name, e.g. petrel-plugin-stamp)';

interface PetrelPackage {
  readonly engines: { readonly node: string };
  readonly devDependencies: Readonly<Record<string, string>>;
}

/**
 * `petrel plugin new NAME [--dir DIR]`: writes a plugin package that
 * builds, tests itself against a real server and installs into a site.
 */
export async function pluginCommand(context: CliContext): Promise<number> {
  const [action, packageName] = context.args;
  if (action === undefined) return context.usage('which plugin command?', USAGE);
  if (action !== 'new') return context.usage(`unknown plugin command "${action}"`, USAGE);
  if (packageName === undefined) return context.usage('plugin new: the NAME is missing', USAGE);
  if (!PACKAGE_NAME.test(packageName)) {
    return context.usage(`plugin new: "${packageName}" is not an npm package name (lower case letters, digits, - . _ ~, optionally @scope/)`, USAGE);
  }
  const dir = resolve(typeof context.flags.dir === 'string' ? context.flags.dir : packageName.replace(/^@[^/]+\//, ''));
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    context.err(`plugin new: ${dir} is not empty; choose another with --dir`);
    return 1;
  }
  const petrel = JSON.parse(await readFile(new URL('package.json', PACKAGE_ROOT), 'utf8')) as PetrelPackage;
  const files = scaffoldFiles({
    packageName,
    petrelVersion: PETREL_VERSION,
    typescript: petrel.devDependencies.typescript,
    typesNode: petrel.devDependencies['@types/node'],
    node: petrel.engines.node,
  });
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  const shown = relative(process.cwd(), dir) || '.';
  context.out(`wrote the plugin ${pluginNameOf(packageName)} (package ${packageName}) in ${dir}:`);
  for (const path of Object.keys(files)) context.out(`  ${path}`);
  context.out('');
  context.out('Next:');
  context.out(`  cd ${shown}`);
  context.out(`  npm install      # or: npm install --save-dev /path/to/petrel-${PETREL_VERSION}.tgz`);
  context.out('  npm test         # builds it and talks SMTP to a server running it');
  context.out('  npm pack         # then, in a site directory: npm install /path/to/the.tgz');
  return 0;
}
