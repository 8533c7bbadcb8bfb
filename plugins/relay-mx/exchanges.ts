import { isIP } from 'node:net';
import type { DnsResolver } from 'petrel';
import { DeliveryFailure } from 'petrel/delivery';

/** A mail exchanger of a domain, in the order it is tried. */
export interface Exchange {
  readonly name: string;
  readonly priority: number;
  /** No MX: the domain's own address records serve (RFC 5321 5.1), or an address literal. */
  readonly implicit: boolean;
  /**
   * As far as the MX lookup goes, DANE may apply (RFC 7672 2.2): the MX
   * records naming it were DNSSEC-validated, or there were none (then its
   * address records decide alone). False for an address literal, and
   * whenever DNSSEC was not asked about.
   */
  readonly dnssec: boolean;
}

export interface ExchangeLookupOptions {
  /** Ask whether the MX records were validated (DANE on). */
  readonly dnssec?: boolean;
  /** Orders exchangers of equal priority (tests fix it). */
  readonly random?: () => number;
}

/** mx-connect tries at most this many hosts for one domain; so do we. */
const MAX_EXCHANGES = 20;

/**
 * The mail exchangers of `domain`, most preferred first, as RFC 5321 5.1
 * and RFC 7505 say: MX records by priority (equal priorities shuffled, to
 * spread load), the domain itself when it has no MX, an address literal as
 * it is. Throws a DeliveryFailure that decides the whole delivery:
 *
 * - a null MX (`0 .`) only: 556 5.1.10, the domain takes no mail — bounce at once;
 * - the domain does not exist (NXDOMAIN): 550 5.1.2 — bounce;
 * - the lookup failed (timeout, SERVFAIL): 451 4.4.3 — try again later.
 *
 * Whether an exchanger has usable addresses is mx-connect's question,
 * asked when connecting (relay-mx's exchange-connector.ts).
 */
export async function exchangesOf(domain: string, dns: DnsResolver, options: ExchangeLookupOptions = {}): Promise<Exchange[]> {
  const literal = addressLiteral(domain);
  if (literal) return [{ name: literal, priority: 0, implicit: true, dnssec: false }];
  const askDnssec = options.dnssec === true && dns.resolveDnssec !== undefined;
  let records: MxRecord[];
  let secure = false;
  try {
    if (askDnssec) ({ records, secure } = (await dns.resolveDnssec!(domain, 'MX')) as { records: MxRecord[]; secure: boolean });
    else records = (await dns.resolve(domain, 'MX')) as MxRecord[];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENODATA') return [{ name: domain, priority: 0, implicit: true, dnssec: askDnssec }];
    if (code === 'ENOTFOUND') {
      throw new DeliveryFailure({ code: 550, enhanced: '5.1.2', text: `domain ${domain} does not exist (DNS: no such domain)` });
    }
    throw new DeliveryFailure({ code: 451, enhanced: '4.4.3', text: `DNS lookup of the MX records of ${domain} failed: ${code ?? (error as Error).message}` });
  }
  const usable = records.filter((record) => !isNullExchange(record.exchange));
  if (records.length > 0 && usable.length === 0) {
    throw new DeliveryFailure({ code: 556, enhanced: '5.1.10', text: `${domain} does not accept mail (null MX, RFC 7505)` });
  }
  if (usable.length === 0) return [{ name: domain, priority: 0, implicit: true, dnssec: askDnssec }];
  // A null MX beside real ones is a misconfiguration (RFC 7505 4.1): it is ignored, like mx-connect does.
  const keyed = usable.map((record) => ({
    name: (record.exchange as string).replace(/\.$/, '').toLowerCase(),
    priority: Number(record.priority) || 0,
    tieBreak: (options.random ?? Math.random)(),
  }));
  keyed.sort((a, b) => a.priority - b.priority || a.tieBreak - b.tieBreak);
  const seen = new Set<string>();
  const ordered: Exchange[] = [];
  for (const { name, priority } of keyed) {
    if (seen.has(name)) continue;
    seen.add(name);
    ordered.push({ name, priority, implicit: false, dnssec: secure });
  }
  return ordered.slice(0, MAX_EXCHANGES);
}

interface MxRecord {
  readonly exchange?: string;
  readonly priority?: number;
}

function isNullExchange(exchange: string | undefined): boolean {
  const name = (exchange ?? '').trim();
  return name === '' || name === '.';
}

/** `[192.0.2.1]` → `192.0.2.1`, `[IPv6:2001:db8::1]` → `2001:db8::1`; undefined for a domain name. */
function addressLiteral(domain: string): string | undefined {
  const match = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain);
  return match && isIP(match[1]) !== 0 ? match[1] : undefined;
}
