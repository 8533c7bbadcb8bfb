import type { ExpiringStore } from '../../core/util/expiring-store.js';
import { networkOf } from '../../core/util/ip-address.js';

export interface LockoutSettings {
  /** Failures from one network within `windowMs` that lock it out. */
  readonly maxFailures: number;
  readonly windowMs: number;
  /** How long a locked-out network stays locked. */
  readonly durationMs: number;
  /** IPv6 clients are counted per network of this size (a host owns its whole /64). */
  readonly ipv6Prefix: number;
}

/**
 * Counts failed logins per client network and locks a network out once it
 * has failed too often. The counts live in an ExpiringStore, so with Redis
 * every Petrel node shares them and an attacker cannot spread guesses over
 * the nodes behind a load balancer.
 */
export class AuthLockout {
  constructor(
    private readonly store: ExpiringStore,
    private readonly settings: LockoutSettings,
  ) {}

  async isLocked(address: string): Promise<boolean> {
    return (await this.store.get(`lock:${this.#network(address)}`)) !== undefined;
  }

  /** Counts one failure; true when this failure locked the network out. */
  async recordFailure(address: string): Promise<boolean> {
    const network = this.#network(address);
    const failures = await this.store.increment(`fail:${network}`, this.settings.windowMs);
    if (failures < this.settings.maxFailures) return false;
    await this.store.set(`lock:${network}`, String(failures), this.settings.durationMs);
    await this.store.delete(`fail:${network}`);
    return true;
  }

  #network(address: string): string {
    return networkOf(address, 32, this.settings.ipv6Prefix);
  }
}
