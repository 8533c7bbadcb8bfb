import { readFileSync, writeFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  return cpuTimes(pid).own;
}

/**
 * CPU seconds (user + system) of a process itself, and of its children that
 * have exited and been waited for (cutime + cstime), from /proc/<pid>/stat.
 */
export function cpuTimes(pid: number): { own: number; reapedChildren: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return { own: (fields[11] + fields[12]) / TICKS_PER_SECOND, reapedChildren: (fields[13] + fields[14]) / TICKS_PER_SECOND };
}

/** Current and peak resident set size in bytes (VmRSS, VmHWM). */
export function memory(pid: number): { rss: number; peakRss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: field('VmRSS'), peakRss: field('VmHWM') };
}

/** Resets the kernel's peak RSS counter (VmHWM) for a process we own. */
export function resetPeakRss(pid: number): void {
  try {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted: peaks then cover the whole life of the process
  }
}

/** A process and all its descendants, parent first, from /proc (children files). */
export function treeOf(root: number): number[] {
  const all = [root];
  for (let i = 0; i < all.length; i++) {
    try {
      const children = readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, 'utf8').trim();
      if (children) all.push(...children.split(/\s+/).map(Number));
    } catch {
      // the process ended meanwhile
    }
  }
  return all;
}

/** A /proc reading of a process that may have exited meanwhile. */
export function ifRunning<T>(read: () => T, gone: T): T {
  try {
    return read();
  } catch {
    return gone;
  }
}

/**
 * CPU seconds of a process and its descendants: its own, what its reaped
 * children used (cutime/cstime), and its live descendants' own.
 */
export function treeCpuSeconds(root: number): number {
  const { own, reapedChildren } = ifRunning(() => cpuTimes(root), { own: 0, reapedChildren: 0 });
  const live = treeOf(root).slice(1).reduce((sum, pid) => sum + ifRunning(() => cpuTimes(pid).own, 0), 0);
  return own + reapedChildren + live;
}
