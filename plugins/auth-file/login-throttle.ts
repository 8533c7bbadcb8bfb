import type { Clock, ExpiringStore } from 'petrel';

export interface ThrottleSettings {
  /** Failed attempts on one login within `windowMs` before its attempts are spaced out. */
  readonly freeFailures: number;
  /** The first spacing; it doubles with every further failure, up to `maxDelayMs`. */
  readonly delayMs: number;
  readonly maxDelayMs: number;
  readonly windowMs: number;
  /** How long a network a login succeeded from is exempt from the spacing. */
  readonly knownForMs: number;
}

export type LoginVerdict =
  /** Try the password; `counted` when the attempt counts against the login until it succeeds. */
  | { readonly throttled: false; readonly counted: boolean }
  | { readonly throttled: true; readonly retryAfterMs: number };

/**
 * Slows down password guessing against one login from many networks, which
 * the per-network lockout cannot see (25 addresses × 4 guesses each stay under
 * any per-address limit). It slows guessing rather than locking the account:
 * a lockout would let any stranger lock a user out.
 *
 * After `freeFailures` failed attempts on a login within `windowMs`, its
 * attempts are spaced out: one may be tried, then none for `delayMs`; each
 * further failure doubles the spacing up to `maxDelayMs`. An attempt that
 * comes too early gets 454 4.7.0 without its password being looked at, so
 * however many connections an attacker opens, the login is tried at most once
 * per spacing (Postfix and Dovecot delay each failure; a delay alone does not
 * slow down an attacker who works in parallel).
 *
 * The real user is not the one slowed down: a network the login succeeded
 * from within `knownForMs` is exempt, so from the usual places the user logs
 * in at once, whatever an attacker does elsewhere. From a new place, during an
 * attack, the user may be told to wait; when the attack stops, the counts
 * expire after `windowMs`.
 */
export class LoginThrottle {
  constructor(
    private readonly store: ExpiringStore,
    private readonly settings: ThrottleSettings,
    private readonly clock: Clock,
  ) {}

  async begin(login: string, network: string): Promise<LoginVerdict> {
    if ((await this.store.get(knownKey(login, network))) !== undefined) return { throttled: false, counted: false };
    const failures = await this.store.increment(`login-fail:${login}`, this.settings.windowMs);
    if (failures <= this.settings.freeFailures) return { throttled: false, counted: true };
    const spacing = Math.min(this.settings.maxDelayMs, this.settings.delayMs * 2 ** (failures - this.settings.freeFailures - 1));
    const until = this.clock.now() + spacing;
    if (await this.store.setIfAbsent(`login-gate:${login}`, String(until), spacing)) return { throttled: false, counted: true };
    await this.store.decrement(`login-fail:${login}`);
    const opens = Number((await this.store.get(`login-gate:${login}`)) ?? until);
    return { throttled: true, retryAfterMs: Math.max(1, opens - this.clock.now()) };
  }

  /** The login succeeded from `network`: the attempt does not count, and the network is known from now on. */
  async succeeded(login: string, network: string, counted: boolean): Promise<void> {
    if (counted) await this.store.decrement(`login-fail:${login}`);
    await this.store.set(knownKey(login, network), '1', this.settings.knownForMs);
  }
}

function knownKey(login: string, network: string): string {
  return `login-known:${login} ${network}`;
}
