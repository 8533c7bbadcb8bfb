import type { TlsaRecord } from 'mx-connect';
import type { DnsResolver, RecordType } from '../../core/dns/resolver.js';

/**
 * Petrel's resolver (TOKENS.Dns) in the two shapes mx-connect asks with, so
 * every lookup of an outbound delivery goes through it: A/AAAA of the
 * exchangers and TXT of `_mta-sts.<domain>` (and A/AAAA of the policy
 * host) through `dnsOptions.resolveRecords`, TLSA through
 * `dane.resolveTlsa`, which mx-connect keeps separate. The MX lookup
 * itself is ours (exchanges.ts), through the same resolver.
 */
export function recordsResolver(dns: DnsResolver): (domain: string, type: string) => Promise<unknown[]> {
  return (domain, type) => dns.resolve(domain, type as RecordType);
}

/** node:dns answers TLSA as `{ certUsage, selector, match, data }`; mx-connect matches `{ usage, selector, mtype, cert }`. */
interface NodeTlsaAnswer {
  certUsage?: number;
  usage?: number;
  selector: number;
  match?: number;
  mtype?: number;
  data?: ArrayBuffer | Buffer | string;
  cert?: ArrayBuffer | Buffer | string;
  ttl?: number;
}

export function tlsaResolver(dns: DnsResolver): (name: string) => Promise<TlsaRecord[]> {
  return async (name) => {
    const answers = (await dns.resolve(name, 'TLSA')) as NodeTlsaAnswer[];
    return answers.map((answer) => ({
      usage: answer.certUsage ?? answer.usage ?? -1,
      selector: answer.selector,
      mtype: answer.match ?? answer.mtype ?? -1,
      cert: toBuffer(answer.data ?? answer.cert),
      ...(answer.ttl !== undefined ? { ttl: answer.ttl } : {}),
    }));
  };
}

function toBuffer(data: ArrayBuffer | Buffer | string | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data, 'hex');
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}
