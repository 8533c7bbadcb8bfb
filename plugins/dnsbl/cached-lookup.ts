import { type Clock, type DnsResolver, isNoRecord } from 'petrel';

const MAX_ENTRIES = 10_000;

/**
 * A-record lookups of blocklist names, cached (listed and not listed alike)
 * so a client that connects again and again costs one query per TTL.
 * Lookup failures are not cached: the next connection asks again.
 */
export class CachedLookup {
  readonly #cache = new Map<string, { answers: string[]; expires: number }>();
  readonly #inFlight = new Map<string, Promise<string[]>>();

  constructor(
    private readonly dns: DnsResolver,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  /** The A records of `name`; empty when the name does not exist (not listed). Throws when DNS fails. */
  async addresses(name: string): Promise<string[]> {
    const cached = this.#cache.get(name);
    if (cached && cached.expires > this.clock.now()) return cached.answers;
    let pending = this.#inFlight.get(name);
    if (!pending) {
      pending = this.#ask(name).finally(() => this.#inFlight.delete(name));
      this.#inFlight.set(name, pending);
    }
    return pending;
  }

  async #ask(name: string): Promise<string[]> {
    let answers: string[];
    try {
      answers = (await this.dns.resolve(name, 'A')) as string[];
    } catch (error) {
      if (!isNoRecord(error)) throw error;
      answers = [];
    }
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(name, { answers, expires: this.clock.now() + this.ttlMs });
    return answers;
  }
}
