import { promises as dns } from 'node:dns';
import { isLoopback } from '../util/networks.js';

export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR' | 'CNAME' | 'NS' | 'TLSA' | 'SOA';

/**
 * All DNS Petrel does goes through this, so tests can answer from a table
 * (test/harness/fake-dns.ts) and operators can point Petrel at a resolver of
 * their choice. The shape is that of `dns.promises.resolve`, which is also
 * what mailauth expects, so it can be handed over as is.
 *
 * Failures are errors with `code` set as node:dns does: ENOTFOUND (no such
 * name), ENODATA (name exists, no record of that type), ETIMEOUT, ESERVFAIL.
 */
export interface DnsResolver {
  resolve(name: string, type: RecordType): Promise<unknown[]>;
  reverse(ip: string): Promise<string[]>;
}

/**
 * The system resolver (what /etc/resolv.conf names). Loopback is answered
 * locally, as /etc/hosts would: asking a name server about 127.0.0.1 only
 * adds a timeout on a machine without one.
 */
export function systemResolver(timeoutMs: number): DnsResolver {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  return {
    resolve: (name, type) => {
      if (name.toLowerCase() === 'localhost' && (type === 'A' || type === 'AAAA')) {
        return Promise.resolve(type === 'A' ? ['127.0.0.1'] : ['::1']);
      }
      return resolver.resolve(name, type) as Promise<unknown[]>;
    },
    reverse: (ip) => (isLoopback(ip) ? Promise.resolve(['localhost']) : resolver.reverse(ip)),
  };
}

/** True for the errors that mean "there is no such record", as opposed to a lookup failure. */
export function isNoRecord(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}
