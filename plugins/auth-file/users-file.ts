import { mkdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { asOwnerOf, fsyncDirectory, PidLock, writeAndRename } from 'petrel';
import { hashProblem } from './password-hash.js';

/**
 * The users file: one `login:hash` a line, `#` starts a comment.
 *
 *   # petrel users
 *   alice@example.org:$scrypt$ln=15,r=8,p=1$...$...
 *
 * Logins are compared case-insensitively (stored lower case), because mail
 * clients and people are not consistent about the case of an address.
 */
export type Users = ReadonlyMap<string, string>;

/** Where the users file of an auth-file config lives: `file` is relative to the data directory. */
export function usersFilePath(dataDir: string, file: string): string {
  return isAbsolute(file) ? file : join(dataDir, file);
}

const HEADER = '# Petrel users: login:scrypt-hash, one a line. Edit with `petrel user add|passwd|remove`.\n';

export function normalizeLogin(login: string): string {
  return login.normalize('NFC').toLowerCase();
}

/** Why a login cannot be stored, or undefined when it is fine. */
export function loginProblem(login: string): string | undefined {
  if (login.length === 0) return 'a login must not be empty';
  if (login.length > 254) return 'a login must be at most 254 characters';
  if (/[\s:#]/u.test(login) || /\p{Cc}/u.test(login)) return 'a login must not contain spaces, ":", "#" or control characters';
  return undefined;
}

/** Parses the file; a bad line is an error naming the file and line. */
export function parseUsers(text: string, path: string): Users {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${path}:${index + 1}`;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`${where}: expected login:hash`);
    const login = normalizeLogin(line.slice(0, colon));
    const hash = line.slice(colon + 1);
    const problem = loginProblem(login) ?? hashProblem(hash);
    if (problem) throw new Error(`${where}: ${problem}`);
    if (users.has(login)) throw new Error(`${where}: login ${login} is listed twice`);
    users.set(login, hash);
  });
  return users;
}

export function formatUsers(users: Users): string {
  const lines = [...users].sort(([a], [b]) => a.localeCompare(b)).map(([login, hash]) => `${login}:${hash}\n`);
  return HEADER + lines.join('');
}

/**
 * Reads, changes and writes the file back atomically (temp file, fsync,
 * rename, directory fsync), under a lock so two `petrel user` commands do
 * not lose each other's change. A running server sees the new file on its
 * next AUTH. The file is created (mode 0640) if missing.
 */
export async function updateUsersFile(path: string, change: (users: Map<string, string>) => void): Promise<void> {
  // Root (an operator's `petrel user`) writes as the directory's owner: the server, running as that user, must read the file.
  await asOwnerOf(dirname(path), () => updateAsOwner(path, change));
}

async function updateAsOwner(path: string, change: (users: Map<string, string>) => void): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const lock = new PidLock(`${path}.lock`);
  for (let attempt = 0; !(await lock.acquire()); attempt++) {
    if (attempt >= 50) throw new Error(`${path} is being changed by process ${(await lock.owner()) ?? 'unknown'}; try again`);
    await sleep(100);
  }
  try {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const users = new Map(parseUsers(text, path));
    change(users);
    await writeAndRename(`${path}.tmp-${process.pid}`, path, formatUsers(users));
    await fsyncDirectory(dirname(path));
  } finally {
    await lock.release();
  }
}
