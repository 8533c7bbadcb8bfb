import * as nodeModule from 'node:module';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../version.js';

/*
 * One Petrel, and one tsyringe, per process.
 *
 * A plugin installed as an npm package imports `petrel`. Where that import
 * lands depends on how npm laid the directories out: Petrel installed
 * globally and the plugin in a site directory, a plugin that brought a copy
 * of Petrel in its own node_modules (npm installs peer dependencies), a
 * symlinked checkout. A second copy has its own tsyringe, so the plugin's
 * @inject/@injectable register where Petrel's container never looks, and
 * the plugin fails to construct for reasons its author cannot see.
 *
 * So the running Petrel answers for `petrel`, `petrel/*`, `tsyringe` and
 * `reflect-metadata` whoever imports them (a resolve hook: the import is
 * resolved as if Petrel itself made it), and each copy that is loaded
 * anyway (an import by file path, a program embedding two) is recorded, so
 * the plugin host can name both and say how to fix it.
 */

const SHARED_SPECIFIER = /^(?:petrel(?:\/.*)?|tsyringe|reflect-metadata)$/;
const LOADED_COPIES = Symbol.for('petrel.loadedCopies');
const RESOLVE_HOOK = Symbol.for('petrel.resolveHook');

type ProcessWide = Record<symbol, unknown>;

/** The package directory of every copy of Petrel evaluated in this process. */
const copies = ((globalThis as ProcessWide)[LOADED_COPIES] ??= new Set<string>()) as Set<string>;
const thisCopy = fileURLToPath(PACKAGE_ROOT);
copies.add(thisCopy);

/**
 * Makes every later import of petrel, tsyringe and reflect-metadata in this
 * process resolve to this Petrel's copy. Done once, before plugins are
 * imported; imports from Petrel's own files are left alone.
 */
export function resolveSharedImportsHere(): void {
  const registerHooks = (nodeModule as { registerHooks?: typeof nodeModule.registerHooks }).registerHooks;
  if (typeof registerHooks !== 'function' || (globalThis as ProcessWide)[RESOLVE_HOOK]) return;
  (globalThis as ProcessWide)[RESOLVE_HOOK] = thisCopy;
  const petrelParent = new URL('dist/core/index.js', PACKAGE_ROOT).href;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (!SHARED_SPECIFIER.test(specifier) || context.parentURL?.startsWith(PACKAGE_ROOT.href)) return nextResolve(specifier, context);
      return nextResolve(specifier, { ...context, parentURL: petrelParent });
    },
  });
}

/**
 * Throws when another copy of Petrel has been loaded beside this one, naming
 * both, what loaded it and what to do. Called after each plugin import.
 */
export function assertOnePetrel(loadedBy: string): void {
  const others = [...copies].filter((copy) => copy !== thisCopy);
  if (others.length === 0) return;
  throw new Error(
    `two copies of Petrel are loaded: the one running (${thisCopy}) and ${others.join(', ')}, loaded by ${loadedBy}. ` +
      'A plugin must use the Petrel that runs it, or its @inject decorators register in the other copy: ' +
      'import petrel by its package name (not by a file path), declare it in peerDependencies rather than dependencies, ' +
      'and remove the extra copy (npm uninstall petrel where it was installed, or npm dedupe)',
  );
}
