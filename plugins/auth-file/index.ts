import { isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import { duration } from '../../core/config/units.js';
import { TOKENS } from '../../core/di/tokens.js';
import type { HookRegistrar } from '../../core/hooks/registry.js';
import { accept, defer, disconnect, next, reject, type HookResult } from '../../core/hooks/results.js';
import type { Logger } from '../../core/log/logger.js';
import type { Paths } from '../../core/paths.js';
import type { PluginMeta } from '../../core/plugins/contract.js';
import type { Credentials, Session } from '../../core/session.js';
import { openExpiringStore } from '../../core/util/expiring-store.js';
import { unmapIPv4 } from '../../core/util/networks.js';
import { checkFileAtStart } from '../../core/util/file-at-start.js';
import { WatchedFile } from '../../core/util/watched-file.js';
import { AuthLockout } from './auth-lockout.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import { normalizeLogin, parseUsers, type Users } from './users-file.js';

export const options = z.strictObject({
  file: z.string().min(1).default('users').describe('the users file (login:hash lines), relative to server.dataDir; `petrel user` edits it'),
  optional: z.boolean().default(false).describe('start even when the users file does not exist yet (with a warning); otherwise a missing file stops the start'),
  failureDelay: duration()
    .prefault('1s')
    .refine((ms) => ms <= 5000, 'at most 5s (the auth hook times out at 10s)')
    .describe('pause before every 535 answer, which slows guessing down'),
  lockout: z
    .strictObject({
      enabled: z.boolean().default(true),
      maxFailures: z.number().int().min(1).default(5).describe('failed logins from one client network that lock it out'),
      window: duration().prefault('15m').describe('failures older than this are forgotten'),
      duration: duration().prefault('15m').describe('how long a locked-out network gets 454 for every AUTH'),
      ipv6Prefix: z.number().int().min(32).max(128).default(64).describe('IPv6 clients are counted per network of this size'),
      store: z.enum(['auto', 'memory', 'redis']).default('auto').describe('auto: Redis when the config has redis:, memory otherwise'),
    })
    .prefault({}),
});

type Options = z.output<typeof options>;

const REPLIES = {
  failed: reject(535, '5.7.8', 'Authentication credentials invalid'),
  locked: defer(454, '4.7.0', 'Too many failed authentication attempts from your network; try again later'),
  lockedNow: disconnect(421, '4.7.0', 'Too many failed authentication attempts; try again later'),
} as const;

/**
 * AUTH PLAIN and LOGIN against a users file of scrypt hashes, reloaded when
 * it changes. It also guards every auth plugin in the server:
 *
 *   priority  100  a locked-out client network gets 454 4.7.0, no password is checked
 *   priority    0  the users file: accept() on a match, next() otherwise
 *   priority -100  nobody accepted: count the failure, wait failureDelay,
 *                  answer 535 5.7.8 (or 421 and close when this failure locks the network out)
 *
 * An auth plugin of your own registers at the default priority, between the
 * two guards, and is protected the same way (docs/writing-a-plugin.md,
 * "Authenticating against your own store").
 */
@injectable()
export default class AuthFile {
  static readonly meta: PluginMeta = {
    name: 'auth-file',
    version: '1.0.0',
    description: 'AUTH PLAIN/LOGIN from a users file with scrypt hashes; failure delay and lockout for all auth plugins',
  };
  static readonly options = options;

  readonly #users: WatchedFile<Users>;
  readonly #lockout: AuthLockout | undefined;
  /** Checked for unknown logins, so they take as long as known ones (no user enumeration by timing). */
  #decoyHash: Promise<string> | undefined;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Clock) clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Redis, { isOptional: true }) redis: Redis | undefined,
  ) {
    const path = usersFilePath(paths.dataDir, opts.file);
    this.#users = new WatchedFile(path, (text) => parseUsers(text, path), (error) =>
      log.error({ err: error, file: path }, `users file not reloaded, the previous version stays in use: ${error.message}`),
    );
    const { lockout } = opts;
    this.#lockout = lockout.enabled
      ? new AuthLockout(openExpiringStore(lockout.store, 'auth-file', clock, redis), {
          maxFailures: lockout.maxFailures,
          windowMs: lockout.window,
          durationMs: lockout.duration,
          ipv6Prefix: lockout.ipv6Prefix,
        })
      : undefined;
  }

  register(hooks: HookRegistrar): void {
    hooks.on('auth', (session) => this.refuseLockedOut(session), { priority: 100 });
    hooks.on('auth', (_session, credentials) => this.checkPassword(credentials));
    hooks.on('auth', (session, credentials) => this.countFailure(session, credentials), { priority: -100 });
  }

  async start(): Promise<void> {
    const exists = await checkFileAtStart(
      this.#users.path,
      { what: 'users file', optional: this.opts.optional, create: 'add a user with petrel user add LOGIN (it creates the file)', meanwhile: 'nobody can log in' },
      this.log,
    );
    // Read now, so a broken file stops the start naming its line.
    const users = await this.#users.current();
    if (exists && users.size === 0) {
      this.log.warn({ file: this.#users.path }, `no users in ${this.#users.path} yet; add one with: petrel user add LOGIN`);
    } else if (exists) {
      this.log.info({ file: this.#users.path, users: users.size }, 'users loaded');
    }
    this.#decoyHash = hashPassword('decoy password that matches nothing');
  }

  async refuseLockedOut(session: Session): Promise<HookResult> {
    if (this.#lockout && (await this.#lockout.isLocked(session.remote.address))) {
      this.log.info({ sid: session.id, ip: unmapIPv4(session.remote.address) }, 'AUTH refused: client network is locked out');
      return REPLIES.locked;
    }
    return next();
  }

  async checkPassword(credentials: Credentials): Promise<HookResult> {
    if (credentials.password === undefined) return next();
    const users = await this.#users.current();
    const hash = users.get(normalizeLogin(credentials.username));
    if (hash === undefined) {
      await verifyPassword(credentials.password, await (this.#decoyHash ??= hashPassword('decoy')));
      return next();
    }
    return (await verifyPassword(credentials.password, hash)) ? accept() : next();
  }

  async countFailure(session: Session, credentials: Credentials): Promise<HookResult> {
    const lockedNow = this.#lockout ? await this.#lockout.recordFailure(session.remote.address) : false;
    if (lockedNow) {
      // A line fail2ban and friends can match: the network, the last login tried, the limit.
      this.log.warn(
        { sid: session.id, ip: unmapIPv4(session.remote.address), user: credentials.username, maxFailures: this.opts.lockout.maxFailures },
        'client network locked out after repeated AUTH failures',
      );
    }
    await sleep(this.opts.failureDelay);
    return lockedNow ? REPLIES.lockedNow : REPLIES.failed;
  }
}

/** Where the users file of an auth-file config lives (also used by `petrel user`). */
export function usersFilePath(dataDir: string, file: string): string {
  return isAbsolute(file) ? file : join(dataDir, file);
}
