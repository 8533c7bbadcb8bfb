import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The Haraka release the peer figures are for. Pinned rather than "latest 3.x"
 * so two runs compare the same Haraka and docs/performance.md can name it.
 */
export const HARAKA_VERSION = '3.3.4';

/**
 * Haraka from the npm registry, installed once into a folder under the temp
 * dir and reused by later `--peers` runs. Returns the path of its `haraka`
 * script; throws when npm cannot install it (no registry, say).
 */
export function installedHaraka(): string {
  const home = join(tmpdir(), `petrel-bench-haraka-${HARAKA_VERSION}`);
  const script = (folder: string) => join(folder, 'node_modules', 'Haraka', 'bin', 'haraka');
  if (existsSync(script(home))) return script(home);
  // Install beside it and rename when complete, so an interrupted or failed
  // install is never mistaken for a usable one by the next run.
  const partial = mkdtempSync(`${home}.partial-`);
  try {
    // Without a package.json here npm would look for one in the folders above and install there.
    writeFileSync(join(partial, 'package.json'), '{ "private": true }\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--loglevel=error', `Haraka@${HARAKA_VERSION}`], {
      cwd: partial,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
    });
    if (!existsSync(script(partial))) throw new Error(`npm install finished but ${script(partial)} is missing`);
    rmSync(home, { recursive: true, force: true });
    renameSync(partial, home);
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return script(home);
}
