import { promises as dns } from 'node:dns';
import { isLoopback } from '../util/networks.js';
import { dnsError } from './dns-error.js';
import { DnssecStub, type DnssecAnswer, type DnssecRecordType } from './dnssec-stub.js';
import { formatServerAddress, parseServerAddress, type ServerAddress } from './server-address.js';

export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'PTR' | 'CNAME' | 'NS' | 'TLSA' | 'SOA';
export type { DnssecAnswer, DnssecRecordType } from './dnssec-stub.js';

/**
 * All DNS Petrel does goes through this, so tests can answer from a table
 * (test/harness/fake-dns.ts) and operators can point Petrel at a resolver of
 * their choice (`dns.servers`). The shape is that of `dns.promises.resolve`,
 * which is also what mailauth expects, so it can be handed over as is.
 *
 * Failures are errors with `code` set as node:dns does: ENOTFOUND (no such
 * name; also a name DNS cannot carry), ENODATA (name exists, no record of
 * that type), ETIMEOUT, ESERVFAIL.
 */
export interface DnsResolver {
  resolve(name: string, type: RecordType): Promise<unknown[]>;
  reverse(ip: string): Promise<string[]>;
  /**
   * The same question, with whether the resolver validated the answer
   * (DNSSEC; see dnssec-stub.ts). DANE uses only validated answers. A
   * resolver without this method validates nothing: DANE never applies.
   */
  resolveDnssec?(name: string, type: DnssecRecordType): Promise<DnssecAnswer>;
}

export interface ResolverSettings {
  /** Name servers (`127.0.0.1:5353`, `[::1]:53`); the system's (/etc/resolv.conf) when absent. */
  readonly servers?: readonly string[];
  /** Per query and try. */
  readonly timeout: number;
}

/**
 * The resolver the `dns` settings describe: node:dns (c-ares) for ordinary
 * lookups, the DNSSEC stub for the ones that need the AD bit, both asking
 * the same servers. Loopback is answered locally, as /etc/hosts would:
 * asking a name server about 127.0.0.1 only adds a timeout on a machine
 * without one.
 */
export function configuredResolver(settings: ResolverSettings): DnsResolver {
  const resolver = new dns.Resolver({ timeout: settings.timeout, tries: 2 });
  if (settings.servers) resolver.setServers(settings.servers.map((server) => formatServerAddress(serverAddress(server))));
  const stub = new DnssecStub(resolver.getServers().map(serverAddress), settings.timeout);
  return {
    resolve: (name, type) => {
      if (name.toLowerCase() === 'localhost' && (type === 'A' || type === 'AAAA')) {
        return Promise.resolve(type === 'A' ? ['127.0.0.1'] : ['::1']);
      }
      return (resolver.resolve(name, type) as Promise<unknown[]>).catch((error: unknown) => {
        throw refusedNameIsMissing(error, type, name);
      });
    },
    reverse: (ip) => (isLoopback(ip) ? Promise.resolve(['localhost']) : resolver.reverse(ip)),
    resolveDnssec: (name, type) => stub.resolve(name, type),
  };
}

function serverAddress(text: string): ServerAddress {
  const server = parseServerAddress(text);
  if (!server) throw new Error(`not a name server address: ${text}`);
  return server;
}

/**
 * c-ares refuses to ask about some names (EBADNAME): a label with `:`, an
 * empty or over-long label, as SPF macros can produce from a sender's input.
 * No host can have such a name, so it is a name that does not exist (RFC 7208
 * 4.3, 5: a void lookup), not a failure of the lookup.
 */
function refusedNameIsMissing(error: unknown, type: string, name: string): unknown {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'EBADNAME' ? dnsError('ENOTFOUND', type, name) : error;
}

/** True for the errors that mean "there is no such record", as opposed to a lookup failure. */
export function isNoRecord(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}
