import { chown, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { PetrelError } from '../errors.js';
import { lookupGroup, lookupUser, type GroupAccount, type UserAccount } from './system-accounts.js';

/** The ids of the running process; tests and callers on other platforms pass their own. */
export interface ProcessIds {
  readonly uid: number;
  readonly gid: number;
}

/** What `server.user` and `server.group` say. */
export interface IdentitySettings {
  readonly user?: string;
  readonly group?: string;
}

const ADD_USER_HINT = 'useradd --system --home-dir /var/lib/petrel --shell /usr/sbin/nologin petrel';

/**
 * Who `petrel start` serves mail as, from `server.user`/`server.group` and
 * the account that started it:
 *
 * - started as root with `server.user` naming another account: Petrel binds
 *   its ports and reads its certificates as root, then switches (`switchUser`)
 *   before it serves a connection; the data directory must belong to that user;
 * - started as root with no `server.user`: refused (a mail server parsing the
 *   Internet's input as root is one bug away from giving the machine away);
 *   `server.user: root` runs as root on purpose;
 * - started as anyone else: it stays who it is; a `server.user` naming another
 *   account is an error (only root can switch), naming this one checks the
 *   data directory's owner.
 */
export class ServerIdentity {
  private constructor(
    readonly user: UserAccount,
    readonly group: GroupAccount,
    /** Started as root and switching to `user` once the listeners are bound. */
    readonly mustSwitch: boolean,
    /** `server.user` was given: the data directory must belong to `user`. */
    readonly checksOwner: boolean,
  ) {}

  static resolve(settings: IdentitySettings, current: ProcessIds = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 }): ServerIdentity {
    if (settings.user === undefined) {
      if (current.uid === 0) {
        throw new PetrelError(
          'PETREL_RUN_AS_ROOT',
          'Petrel was started as root and server.user is not set: it will not serve mail as root. ' +
            'Set server.user (and server.group) to the account to switch to once the ports are bound, ' +
            `e.g. "server: { user: petrel }" (create it: ${ADD_USER_HINT}), or "server.user: root" to run as root on purpose`,
        );
      }
      return new ServerIdentity(currentAccount(current), groupOrId(String(current.gid)), false, false);
    }
    const user = lookupUser(settings.user);
    if (!user) {
      throw new PetrelError('PETREL_ACCOUNT_UNKNOWN', `server.user: there is no account "${settings.user}" on this system; create it (${ADD_USER_HINT}) or name another`);
    }
    const group = settings.group === undefined ? groupOrId(String(user.gid)) : lookupGroup(settings.group);
    if (!group) throw new PetrelError('PETREL_ACCOUNT_UNKNOWN', `server.group: there is no group "${settings.group}" on this system`);
    if (current.uid === 0) return new ServerIdentity(user, group, user.uid !== 0, user.uid !== 0);
    if (current.uid !== user.uid) {
      throw new PetrelError(
        'PETREL_WRONG_USER',
        `server.user is ${user.name} (uid ${user.uid}), but Petrel was started as ${currentAccount(current).name} (uid ${current.uid}) and only root can switch users: start it as root or as ${user.name}`,
      );
    }
    return new ServerIdentity(user, group, false, true);
  }

  /** "petrel (uid 999, group petrel gid 999)", for logs and messages. */
  describe(): string {
    return `${this.user.name} (uid ${this.user.uid}, group ${this.group.name} gid ${this.group.gid})`;
  }

  /**
   * Makes sure the data directory belongs to the user Petrel runs as: creates
   * it owned by that user when it does not exist; otherwise the directory and
   * what is directly in it must be that user's (a file left by a command run
   * as root would be unreadable after the switch, and fail much later with a
   * vaguer error). Without `server.user` nothing is checked.
   */
  async prepareDataDir(dataDir: string): Promise<void> {
    if (!this.checksOwner) return;
    const created = await mkdir(dataDir, { recursive: true, mode: 0o750 });
    if (created !== undefined) {
      // mkdir returns the first directory it made; hand it and those below it to the user.
      for (let dir = dataDir; ; dir = dirname(dir)) {
        await this.#own(dir);
        if (dir === created || dir === dirname(dir)) return;
      }
    }
    const foreign: string[] = [];
    // The directory itself through a link (/var/lib/petrel -> /srv/petrel): it is where Petrel keeps its files.
    const root = await stat(dataDir);
    if (root.uid !== this.user.uid) foreign.push(`${dataDir} (owned by ${ownerName(root.uid)})`);
    for (const entry of await readdir(dataDir)) {
      if (entry === 'lost+found') continue;
      const stats = await lstat(join(dataDir, entry));
      if (stats.uid !== this.user.uid) foreign.push(`${join(dataDir, entry)} (owned by ${ownerName(stats.uid)})`);
    }
    if (foreign.length === 0) return;
    const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? ` and ${foreign.length - 5} more` : '');
    throw new PetrelError(
      'PETREL_DATA_DIR_OWNER',
      `the data directory must belong to ${this.user.name} (uid ${this.user.uid}), the user Petrel runs as, but ${shown} does not; ` +
        `fix it with: chown -R ${this.user.name}:${this.group.name} ${dataDir}`,
    );
  }

  /**
   * Becomes `user` for good: supplementary groups as the system lists them
   * for the user (like login and systemd's User= do, so group access to a
   * certificate keeps working on reload), then the group, then the user,
   * in that order because only root may change groups. Checked afterwards:
   * a process that could become root again has not dropped anything.
   */
  switchUser(): void {
    if (!this.mustSwitch) return;
    try {
      process.initgroups?.(this.user.name, this.group.gid);
      process.setgid?.(this.group.gid);
      process.setuid?.(this.user.uid);
    } catch (error) {
      throw new PetrelError('PETREL_PRIVILEGE_DROP', `could not switch to ${this.describe()}: ${(error as Error).message}`, { cause: error });
    }
    const ids = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];
    const expected = [this.user.uid, this.user.uid, this.group.gid, this.group.gid];
    if (ids.some((id, i) => id !== expected[i]) || process.getgroups?.().includes(0) || canBecomeRoot()) {
      throw new PetrelError('PETREL_PRIVILEGE_DROP', `switching to ${this.describe()} did not take (uid/euid/gid/egid now ${ids.join('/')}); refusing to serve`);
    }
  }

  async #own(path: string): Promise<void> {
    await chown(path, this.user.uid, this.group.gid);
  }
}

function canBecomeRoot(): boolean {
  try {
    process.setuid?.(0);
    return true;
  } catch {
    return false;
  }
}

function currentAccount(current: ProcessIds): UserAccount {
  try {
    const info = userInfo();
    return { name: info.username, uid: current.uid, gid: current.gid, home: info.homedir };
  } catch {
    // A uid without a passwd entry (containers): name it by number.
    return { name: String(current.uid), uid: current.uid, gid: current.gid, home: '/' };
  }
}

function groupOrId(gid: string): GroupAccount {
  return lookupGroup(gid) ?? { name: gid, gid: Number(gid) };
}

function ownerName(uid: number): string {
  const name = lookupUser(String(uid))?.name;
  return name ? `${name}, uid ${uid}` : `uid ${uid}`;
}
