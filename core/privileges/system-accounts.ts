import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

/** A user account as the system's name service knows it. */
export interface UserAccount {
  readonly name: string;
  readonly uid: number;
  /** The account's primary group. */
  readonly gid: number;
  readonly home: string;
}

export interface GroupAccount {
  readonly name: string;
  readonly gid: number;
}

/**
 * Node can switch to a user by name (process.setuid) but cannot look one up,
 * and Petrel needs the numbers before it switches (to own the data directory)
 * and after (the owner of a file in maildrop/). `getent` asks the system's
 * name service, so accounts from LDAP or sssd are found like local ones.
 * Accepts a name or a numeric id; undefined when there is no such account.
 */
export function lookupUser(nameOrId: string): UserAccount | undefined {
  const fields = getentSync('passwd', nameOrId);
  return fields && userOf(fields);
}

export function lookupGroup(nameOrId: string): GroupAccount | undefined {
  const fields = getentSync('group', nameOrId);
  return fields && { name: fields[0], gid: Number(fields[2]) };
}

/** The login name of a uid, for a running server (asynchronous: it must not block the event loop). */
export async function userNameOf(uid: number): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('getent', ['passwd', String(uid)], { timeout: 5000 });
    return fieldsOf(stdout)?.[0];
  } catch {
    return undefined;
  }
}

function getentSync(database: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    return fieldsOf(execFileSync('getent', [database, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }));
  } catch (error) {
    // getent exits 2 when the key is not found; a missing getent is a broken system, say so.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('getent is not installed: cannot look up server.user/server.group');
    return undefined;
  }
}

/** The colon-separated fields of getent's first line (passwd: name:pw:uid:gid:gecos:home:shell; group: name:pw:gid:members). */
function fieldsOf(output: string): string[] | undefined {
  const line = output.split('\n')[0];
  if (!line) return undefined;
  return line.split(':');
}

function userOf(fields: string[]): UserAccount {
  return { name: fields[0], uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? '/' };
}
