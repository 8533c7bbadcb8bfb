import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from './eventually.js';

/** The file names in a maildir's `new/` (none when it does not exist yet). */
export function newMail(maildir: string): string[] {
  try {
    return readdirSync(join(maildir, 'new')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Waits until `new/` of `maildir` holds `count` messages, and returns their contents in name order. */
export async function waitForMail(maildir: string, count = 1, timeoutMs = 10_000): Promise<string[]> {
  const names = await eventually(() => {
    const found = newMail(maildir);
    return found.length >= count ? found : undefined;
  }, `${count} message(s) in ${join(maildir, 'new')}`, timeoutMs);
  return names.map((name) => readFileSync(join(maildir, 'new', name), 'utf8'));
}
