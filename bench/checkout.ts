import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A build of another revision of this repository, for `--compare <rev>`:
 * the "before" of a change runs in the same alternated rotation as the
 * "after", so their ratio is measured under the same machine noise.
 */
export interface Checkout {
  readonly root: string;
  /** The abbreviated commit id, for labels. */
  readonly revision: string;
  remove(): void;
}

export function checkOut(revision: string, workDir: string): Checkout {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const short = git('rev-parse', '--short', `${revision}^{commit}`);
  const root = join(workDir, `checkout-${short}`);
  git('worktree', 'add', '--detach', root, short);
  // The same lockfile means the same dependencies: share ours instead of installing them again.
  const lockfile = (dir: string) => readFileSync(join(dir, 'package-lock.json'), 'utf8');
  if (existsSync(join(process.cwd(), 'node_modules')) && lockfile(root) === lockfile(process.cwd())) {
    symlinkSync(join(process.cwd(), 'node_modules'), join(root, 'node_modules'), 'dir');
  } else {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  return {
    root,
    revision: short,
    remove: () => git('worktree', 'remove', '--force', root),
  };
}

/**
 * `--compare BEFORE` (this tree's petrel-spool against BEFORE's) or
 * `--compare BEFORE..AFTER` (two other revisions, e.g. a fix and its parent).
 */
export interface Comparison {
  readonly after: string;
  readonly before: string;
  /** Checkouts whose builds run as systems of their own. */
  readonly checkouts: readonly Checkout[];
}

export function prepareComparison(spec: string, workDir: string): Comparison {
  const [beforeRevision, afterRevision] = spec.split('..');
  const before = checkOut(beforeRevision, workDir);
  if (!afterRevision) return { before: `petrel-spool@${before.revision}`, after: 'petrel-spool', checkouts: [before] };
  const after = checkOut(afterRevision, workDir);
  return { before: `petrel-spool@${before.revision}`, after: `petrel-spool@${after.revision}`, checkouts: [after, before] };
}
