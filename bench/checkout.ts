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
}

/** `onCreated` gets the worktree's removal as soon as it exists, so a failed build is cleaned up too. */
export function checkOut(revision: string, workDir: string, onCreated: (remove: () => void) => void): Checkout {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const short = git('rev-parse', '--short', `${revision}^{commit}`);
  const root = join(workDir, `checkout-${short}`);
  git('worktree', 'add', '--detach', root, short);
  onCreated(() => git('worktree', 'remove', '--force', root));
  // The same lockfile means the same dependencies: share ours instead of installing them again.
  const lockfile = (dir: string) => readFileSync(join(dir, 'package-lock.json'), 'utf8');
  if (existsSync(join(process.cwd(), 'node_modules')) && lockfile(root) === lockfile(process.cwd())) {
    symlinkSync(join(process.cwd(), 'node_modules'), join(root, 'node_modules'), 'dir');
  } else {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  return { root, revision: short };
}

/**
 * `--compare BEFORE`: this tree's Petrel systems against BEFORE's build;
 * `--compare BEFORE..AFTER`: two other revisions (e.g. a fix and its parent),
 * without this tree's.
 */
export interface Comparison {
  readonly before: Checkout;
  readonly after?: Checkout;
}

export function prepareComparison(spec: string, workDir: string, onCreated: (remove: () => void) => void): Comparison {
  const [beforeRevision, afterRevision] = spec.split('..');
  const before = checkOut(beforeRevision, workDir, onCreated);
  return afterRevision ? { before, after: checkOut(afterRevision, workDir, onCreated) } : { before };
}

/** Each compared system's name after and before the change. */
export function comparedPairs(comparison: Comparison, systems: readonly string[]): { after: string; before: string }[] {
  return systems.map((name) => ({
    after: comparison.after ? `${name}@${comparison.after.revision}` : name,
    before: `${name}@${comparison.before.revision}`,
  }));
}
