import type { TlsaRecord } from 'mx-connect';
import type { DnsResolver, DnssecRecordType, Logger, RecordType } from 'petrel';
import type { Exchange } from './exchanges.js';

/**
 * The DNS of one mx-connect call for one exchanger, in the shapes mx-connect
 * asks with, so every lookup of an outbound delivery goes through Petrel's
 * resolver (TOKENS.Dns): A/AAAA of the exchanger through
 * `dnsOptions.resolveRecords`, TLSA through `dane.resolveTlsa`, and
 * `dane.checkDnssecSecure` in between. The MX lookup itself is ours
 * (exchanges.ts), through the same resolver.
 *
 * With DANE on, TLSA records count only as RFC 7672 allows: the MX records
 * that named the exchanger were validated (2.2.1), so were its address
 * records (2.2.2: they are asked first, and decide whether TLSA is looked up
 * at all), and so was the TLSA answer itself (2.2.3). Anything unvalidated
 * is treated as no TLSA record: opportunistic TLS, as without DANE. A
 * lookup that fails (a validating resolver's SERVFAIL for bogus data
 * included) is an error, which defers the mail rather than sending it with
 * less protection.
 */
export class ExchangeDns {
  /** Whether each address lookup that found records was validated. */
  readonly #addressAnswers: boolean[] = [];

  constructor(
    private readonly dns: DnsResolver,
    private readonly exchange: Exchange,
    private readonly dane: boolean,
    private readonly log: Logger,
  ) {}

  /** `dnsOptions.resolveRecords`. */
  readonly resolveRecords = async (name: string, type: string): Promise<unknown[]> => {
    if (!this.dane || (type !== 'A' && type !== 'AAAA')) return this.dns.resolve(name, type as RecordType);
    const answer = await this.#resolveDnssec(name, type);
    this.#addressAnswers.push(answer.secure);
    return answer.records;
  };

  /** `dane.checkDnssecSecure`: called after the address lookups, before the TLSA lookup. */
  readonly checkDnssecSecure = async (): Promise<{ secure: boolean }> => {
    const addresses = this.#addressAnswers.length > 0 && this.#addressAnswers.every(Boolean);
    const secure = this.exchange.dnssec && addresses;
    if (!secure) {
      const why = this.exchange.dnssec ? 'its address records are not DNSSEC-validated' : 'the MX records naming it are not DNSSEC-validated';
      this.log.debug({ mx: this.exchange.name }, `DANE does not apply to ${this.exchange.name}: ${why}`);
    }
    return { secure };
  };

  /** `dane.resolveTlsa`; NODATA and NXDOMAIN errors mean no records to mx-connect. */
  readonly resolveTlsa = async (name: string): Promise<TlsaRecord[]> => {
    const answer = await this.#resolveDnssec(name, 'TLSA');
    if (!answer.secure) {
      this.log.info({ mx: this.exchange.name, tlsa: name }, `TLSA records of ${name} are not DNSSEC-validated: ignored (RFC 7672), opportunistic TLS`);
      return [];
    }
    return (answer.records as NodeTlsaAnswer[]).map(toTlsaRecord);
  };

  #resolveDnssec(name: string, type: DnssecRecordType) {
    // A resolver that cannot tell validated answers from others validates nothing.
    return this.dns.resolveDnssec
      ? this.dns.resolveDnssec(name, type)
      : this.dns.resolve(name, type).then((records) => ({ records, secure: false }));
  }
}

/** node:dns answers TLSA as `{ certUsage, selector, match, data }`; mx-connect matches `{ usage, selector, mtype, cert }`. */
interface NodeTlsaAnswer {
  certUsage: number;
  selector: number;
  match: number;
  data: ArrayBuffer | Buffer;
  ttl?: number;
}

function toTlsaRecord(answer: NodeTlsaAnswer): TlsaRecord {
  return {
    usage: answer.certUsage,
    selector: answer.selector,
    mtype: answer.match,
    cert: Buffer.isBuffer(answer.data) ? answer.data : Buffer.from(answer.data),
    ...(answer.ttl !== undefined ? { ttl: answer.ttl } : {}),
  };
}
