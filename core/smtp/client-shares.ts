import { networkOf } from '../util/ip-address.js';
import { NetworkList, unmapIPv4 } from '../util/networks.js';

export interface ShareLimits {
  /** Connections at once from one address; 0: no limit. */
  readonly clientsPerAddress: number;
  /** Connections at once from one IPv4 /24 or IPv6 /64; 0: no limit. */
  readonly clientsPerNetwork: number;
  /** Clients these limits do not apply to. */
  readonly clientLimitExceptions: readonly string[];
}

export type ShareDecision =
  | { readonly admitted: true; readonly release: () => void }
  | { readonly admitted: false; readonly over: 'address' | 'network'; readonly limit: number };

/**
 * How many connections each client address and each client network holds on
 * one listener, so that one of them cannot take every slot of `clients`
 * (Postfix's smtpd_client_connection_count_limit). A slow client that holds
 * its connections open (slowloris) then locks out only itself. Networks are
 * the /24 of an IPv4 address and the /64 of an IPv6 one, the same ones the
 * AUTH lockout and greylisting use: a host owns its /64, and a sender rarely
 * has only one address in its /24.
 */
export class ClientShares {
  readonly #counts = new Map<string, number>();
  #exceptions: { readonly source: readonly string[]; readonly list: NetworkList } | undefined;

  /** Counts a new connection from `address`, unless it would pass a limit. */
  admit(address: string, limits: ShareLimits): ShareDecision {
    if (this.#exempt(address, limits.clientLimitExceptions)) return { admitted: true, release: () => undefined };
    const keys = [`a ${unmapIPv4(address)}`, `n ${networkOf(address, 24, 64)}`];
    const [fromAddress, fromNetwork] = keys.map((key) => this.#counts.get(key) ?? 0);
    if (limits.clientsPerAddress > 0 && fromAddress >= limits.clientsPerAddress) {
      return { admitted: false, over: 'address', limit: limits.clientsPerAddress };
    }
    if (limits.clientsPerNetwork > 0 && fromNetwork >= limits.clientsPerNetwork) {
      return { admitted: false, over: 'network', limit: limits.clientsPerNetwork };
    }
    for (const key of keys) this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        for (const key of keys) {
          const left = (this.#counts.get(key) ?? 1) - 1;
          if (left > 0) this.#counts.set(key, left);
          else this.#counts.delete(key);
        }
      },
    };
  }

  #exempt(address: string, exceptions: readonly string[]): boolean {
    if (exceptions.length === 0) return false;
    // The list is built again only when a reload changed it.
    if (this.#exceptions?.source !== exceptions) this.#exceptions = { source: exceptions, list: new NetworkList(exceptions) };
    return this.#exceptions.list.contains(address);
  }
}
