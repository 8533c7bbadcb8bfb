import { isIP } from 'node:net';
import type { Clock } from '../clock.js';
import type { DnsResolver } from './resolver.js';

const MAX_ENTRIES = 10_000;

/**
 * The client's name from reverse DNS, forward-confirmed (the PTR name must
 * resolve back to the address), cached so a busy client costs one lookup per
 * TTL. Anything unconfirmed counts as no name: PTR records are controlled by
 * whoever owns the address, so an unconfirmed name proves nothing.
 */
export class ReverseLookup {
  readonly #cache = new Map<string, { name: string | undefined; expires: number }>();

  constructor(
    private readonly dns: DnsResolver,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  async hostnameOf(ip: string): Promise<string | undefined> {
    const now = this.clock.now();
    const cached = this.#cache.get(ip);
    if (cached && cached.expires > now) return cached.name;
    const name = await this.#confirmedName(ip);
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(ip, { name, expires: now + this.ttlMs });
    return name;
  }

  async #confirmedName(ip: string): Promise<string | undefined> {
    let names: string[];
    try {
      names = await this.dns.reverse(ip);
    } catch {
      return undefined;
    }
    const family = isIP(ip) === 6 ? 'AAAA' : 'A';
    for (const name of names.slice(0, 5)) {
      try {
        const addresses = (await this.dns.resolve(name, family)) as string[];
        if (addresses.some((address) => sameAddress(address, ip))) return name.replace(/\.$/, '').toLowerCase();
      } catch {
        // try the next name
      }
    }
    return undefined;
  }
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
