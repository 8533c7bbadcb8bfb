import { setTimeout as sleep } from 'node:timers/promises';
import { accept, checkFileAtStart, type Clock, type Credentials, defer, describeDuration, disconnect, duration, type ExpiringStores, type HookRegistrar, type HookResult, inject, injectable, type Logger, networkOf, next, type Paths, type PluginMeta, reject, type Session, TOKENS, unmapIPv4, WatchedFile, z } from 'petrel';
import { AuthLockout, type NetworkAttempt } from './auth-lockout.js';
import { LoginThrottle } from './login-throttle.js';
import { hashPassword, verifyPassword } from './password-hash.js';
import { userCommand } from './user-command.js';
import { normalizeLogin, parseUsers, usersFilePath, type Users } from './users-file.js';

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
      perLogin: z
        .strictObject({
          enabled: z.boolean().default(true),
          freeFailures: z.number().int().min(1).default(10).describe('failed attempts on one login (from any network) before its attempts are spaced out'),
          delay: duration().prefault('1s').describe('the first spacing between attempts on that login; it doubles with every further failure'),
          maxDelay: duration().prefault('10m').describe('the longest spacing'),
          window: duration().prefault('1h').describe("a login's failures older than this are forgotten"),
          knownNetworks: duration()
            .prefault('30d')
            .describe('how long a network the login succeeded from is exempt from the spacing (the real user is not slowed down)'),
        })
        .refine((perLogin) => perLogin.maxDelay >= perLogin.delay, { message: 'maxDelay must not be shorter than delay', path: ['maxDelay'] })
        .prefault({})
        .describe('spacing out guesses against one login that come from many networks'),
    })
    .prefault({}),
});

type Options = z.output<typeof options>;

const REPLIES = {
  failed: reject(535, '5.7.8', 'Authentication credentials invalid'),
  locked: defer(454, '4.7.0', 'Too many failed authentication attempts from your network; try again later'),
  lockedNow: disconnect(421, '4.7.0', 'Too many failed authentication attempts; try again later'),
  throttled: (waitMs: number) => defer(454, '4.7.0', `Too many failed logins for this account; try again in ${describeDuration(waitMs)}`),
} as const;

/** The session note that carries an AUTH attempt from the guard that counted it to the one that settles it. */
const ATTEMPT = 'auth-file:attempt';

interface Attempt {
  readonly network: NetworkAttempt;
  readonly login: string;
  /** Whether it counts against the login (not when the network is one the login is known from). */
  readonly countedForLogin: boolean;
}

/**
 * AUTH PLAIN and LOGIN against a users file of scrypt hashes, reloaded when
 * it changes. It also guards every auth plugin in the server:
 *
 *   priority  100  the attempt is counted as it starts, per client network and
 *                  per login; a locked-out network gets 454 4.7.0, and so does
 *                  a login whose attempts are being spaced out (no password is
 *                  checked)
 *   priority    0  the users file: accept() on a match, next() otherwise
 *   priority -100  nobody accepted: wait failureDelay, answer 535 5.7.8 (or
 *                  421 and close when this failure locks the network out)
 *
 * An attempt another auth plugin accepts is given back at the session's next
 * command (or its end); one the users file accepts, at once.
 *
 * An auth plugin of your own registers at the default priority, between the
 * two guards, and is protected the same way (docs/writing-a-plugin.md,
 * "Authenticating against your own store").
 */
@injectable()
export default class AuthFile {
  static readonly meta: PluginMeta = {
    name: 'auth-file',
    version: '1.1.0',
    description: 'AUTH PLAIN/LOGIN from a users file with scrypt hashes; failure delay, lockout and per-login spacing for all auth plugins',
  };
  static readonly options = options;
  static readonly commands = [userCommand];

  readonly #users: WatchedFile<Users>;
  readonly #lockout: AuthLockout | undefined;
  readonly #throttle: LoginThrottle | undefined;
  /** Checked for unknown logins, so they take as long as known ones (no user enumeration by timing). */
  #decoyHash: Promise<string> | undefined;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Clock) clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.ExpiringStores) stores: ExpiringStores,
  ) {
    const path = usersFilePath(paths.dataDir, opts.file);
    this.#users = new WatchedFile(path, (text) => parseUsers(text, path), (error) =>
      log.error({ err: error, file: path }, `users file not reloaded, the previous version stays in use: ${error.message}`),
    );
    const { lockout } = opts;
    if (!lockout.enabled) return;
    // The same store after a reload that builds this plugin again: lockouts are not forgotten.
    const store = stores.open(lockout.store, 'auth-file');
    this.#lockout = new AuthLockout(store, { maxFailures: lockout.maxFailures, windowMs: lockout.window, durationMs: lockout.duration });
    const { perLogin } = lockout;
    if (perLogin.enabled) {
      this.#throttle = new LoginThrottle(
        store,
        { freeFailures: perLogin.freeFailures, delayMs: perLogin.delay, maxDelayMs: perLogin.maxDelay, windowMs: perLogin.window, knownForMs: perLogin.knownNetworks },
        clock,
      );
    }
  }

  register(hooks: HookRegistrar): void {
    hooks.on('auth', (session, credentials) => this.beginAttempt(session, credentials), { priority: 100 });
    hooks.on('auth', (session, credentials) => this.checkPassword(session, credentials));
    hooks.on('auth', (session, credentials) => this.countFailure(session, credentials), { priority: -100 });
    // Another plugin accepted the attempt: give it back as soon as the session goes on.
    hooks.on('mail', (session) => this.#settleAccepted(session), { priority: 1000 });
    hooks.on('disconnect', (session) => this.#settleAccepted(session));
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

  async beginAttempt(session: Session, credentials: Credentials): Promise<HookResult> {
    if (!this.#lockout) return next();
    const ip = unmapIPv4(session.remote.address);
    const network = await this.#lockout.begin(networkOf(session.remote.address, 32, this.opts.lockout.ipv6Prefix));
    if (!network) {
      this.log.info({ sid: session.id, ip }, 'AUTH refused: client network is locked out');
      return REPLIES.locked;
    }
    const login = normalizeLogin(credentials.username);
    const verdict = this.#throttle ? await this.#throttle.begin(login, network.network) : { throttled: false as const, counted: false };
    if (verdict.throttled) {
      await this.#lockout.giveBack(network);
      this.log.info({ sid: session.id, ip, user: login, retryAfterMs: verdict.retryAfterMs }, 'AUTH refused: attempts on this login are being spaced out');
      return REPLIES.throttled(verdict.retryAfterMs);
    }
    session.notes.set(ATTEMPT, { network, login, countedForLogin: verdict.counted } satisfies Attempt);
    return next();
  }

  async checkPassword(session: Session, credentials: Credentials): Promise<HookResult> {
    if (credentials.password === undefined) return next();
    const users = await this.#users.current();
    const hash = users.get(normalizeLogin(credentials.username));
    if (hash === undefined) {
      await verifyPassword(credentials.password, await (this.#decoyHash ??= hashPassword('decoy')));
      return next();
    }
    if (!(await verifyPassword(credentials.password, hash))) return next();
    await this.#settle(session, 'accepted');
    return accept();
  }

  async countFailure(session: Session, credentials: Credentials): Promise<HookResult> {
    const lockedNow = await this.#settle(session, 'failed');
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

  async #settleAccepted(session: Session): Promise<HookResult> {
    if (session.user !== undefined) await this.#settle(session, 'accepted');
    return next();
  }

  /** Ends the session's pending attempt; true when it failed and that locked the network out. */
  async #settle(session: Session, outcome: 'accepted' | 'failed'): Promise<boolean> {
    const attempt = session.notes.get(ATTEMPT) as Attempt | undefined;
    if (!attempt || !this.#lockout) return false;
    session.notes.delete(ATTEMPT);
    if (outcome === 'failed') return this.#lockout.failed(attempt.network);
    await this.#lockout.giveBack(attempt.network);
    await this.#throttle?.succeeded(attempt.login, attempt.network.network, attempt.countedForLogin);
    return false;
  }
}
