import type { ExpiringStore } from 'petrel';

export interface LockoutSettings {
  /** Attempts from one network within `windowMs` that did not succeed, after which it is locked out. */
  readonly maxFailures: number;
  readonly windowMs: number;
  /** How long a locked-out network stays locked. */
  readonly durationMs: number;
}

/** An attempt from a network that was let through, and its number in the window. */
export interface NetworkAttempt {
  readonly network: string;
  readonly number: number;
}

/**
 * Locks a client network out after too many failed logins. An attempt is
 * counted when it starts, not when it has failed: otherwise forty attempts
 * sent at once all pass the check before the first failure is counted, and
 * one of them may be the right password. An attempt that succeeds (or is
 * never tried) is given back, so a busy office behind one address is not
 * locked out by its own logins.
 *
 * The counts live in an ExpiringStore, so with Redis every Petrel node shares
 * them and an attacker cannot spread guesses over the nodes behind a load
 * balancer; `network` is the client's address, or its /64 for IPv6.
 */
export class AuthLockout {
  constructor(
    private readonly store: ExpiringStore,
    private readonly settings: LockoutSettings,
  ) {}

  /** Counts an attempt from `network`; undefined when the network is locked out (or now is, by this one). */
  async begin(network: string): Promise<NetworkAttempt | undefined> {
    if ((await this.store.get(`lock:${network}`)) !== undefined) return undefined;
    const number = await this.store.increment(`fail:${network}`, this.settings.windowMs);
    if (number <= this.settings.maxFailures) return { network, number };
    await this.#lock(network, number);
    return undefined;
  }

  /** The attempt failed; true when it was the last one allowed and the network is locked out now. */
  async failed(attempt: NetworkAttempt): Promise<boolean> {
    if (attempt.number < this.settings.maxFailures) return false;
    await this.#lock(attempt.network, attempt.number);
    return true;
  }

  /** The attempt succeeded, or was not tried after all: it does not count. */
  async giveBack(attempt: NetworkAttempt): Promise<void> {
    await this.store.decrement(`fail:${attempt.network}`);
  }

  async #lock(network: string, attempts: number): Promise<void> {
    await this.store.set(`lock:${network}`, String(attempts), this.settings.durationMs);
    await this.store.delete(`fail:${network}`);
  }
}
