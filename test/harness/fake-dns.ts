import { dnsError } from '../../core/dns/dns-error.js';
import type { DnsResolver, DnssecAnswer, DnssecRecordType, RecordType } from '../../core/dns/resolver.js';

export type FakeRecords = Partial<Record<RecordType, unknown[]>>;

/** Aliases followed before the lookup counts as failed (a loop, a chain too long): a resolver's SERVFAIL. */
const MAX_ALIASES = 8;

/**
 * DNS answered from a table, the one thing tests may not do for real. Names
 * are matched case-insensitively without a trailing dot. Unknown names fail
 * with ENOTFOUND, known names without that type with ENODATA, exactly as
 * node:dns does, so code under test sees real-looking failures. A name with
 * a CNAME and no records of the type asked is followed to its target, as a
 * recursive resolver would.
 *
 *   const dns = new FakeDns({ 'example.org': { MX: [{ exchange: 'mx.example.org', priority: 10 }] } });
 *
 * Zones given to `sign()` answer `resolveDnssec` as validated (the AD bit a
 * validating resolver sets), except below a zone given to `unsigned()`;
 * every other name as unsigned.
 */
export class FakeDns implements DnsResolver {
  readonly #zones = new Map<string, FakeRecords>();
  readonly #ptr = new Map<string, string[]>();
  /** name → failure code, for every type (key `name`) or one (key `TYPE name`). */
  readonly #failing = new Map<string, string>();
  /** zone → signed or not; the closest enclosing zone decides. */
  readonly #zoneSigned = new Map<string, boolean>();
  /** Every question asked, as `TYPE name`. */
  readonly queries: string[] = [];

  constructor(records: Record<string, FakeRecords> = {}) {
    for (const [name, set] of Object.entries(records)) this.set(name, set);
  }

  set(name: string, records: FakeRecords): this {
    this.#zones.set(normalize(name), { ...this.#zones.get(normalize(name)), ...records });
    return this;
  }

  /** A PTR answer for an address (what `reverse()` returns). */
  setReverse(ip: string, names: string[]): this {
    this.#ptr.set(ip, names);
    return this;
  }

  /** Makes lookups of `name` (of every type, or of `type` only) fail with a resolver error such as ETIMEOUT or ESERVFAIL. */
  fail(name: string, code: string, type?: RecordType): this {
    this.#failing.set(type ? `${type} ${normalize(name)}` : normalize(name), code);
    return this;
  }

  /** Marks `zone` and every name under it as DNSSEC-signed and validated. */
  sign(zone: string): this {
    this.#zoneSigned.set(normalize(zone), true);
    return this;
  }

  /** Marks `zone` as unsigned although its parent is signed (an insecure delegation). */
  unsigned(zone: string): this {
    this.#zoneSigned.set(normalize(zone), false);
    return this;
  }

  async resolve(name: string, type: RecordType): Promise<unknown[]> {
    this.queries.push(`${type} ${normalize(name)}`);
    let key = normalize(name);
    for (let aliases = 0; aliases <= MAX_ALIASES; aliases++) {
      const failure = this.#failing.get(`${type} ${key}`) ?? this.#failing.get(key);
      if (failure) throw dnsError(failure, type, name);
      const zone = this.#zones.get(key);
      if (!zone) throw dnsError('ENOTFOUND', type, name);
      const answers = zone[type];
      if (answers && answers.length > 0) return structuredClone(answers);
      const alias = type === 'CNAME' ? undefined : zone.CNAME?.[0];
      if (typeof alias !== 'string') throw dnsError('ENODATA', type, name);
      key = normalize(alias);
    }
    throw dnsError('ESERVFAIL', type, name);
  }

  async reverse(ip: string): Promise<string[]> {
    this.queries.push(`PTR ${ip}`);
    const names = this.#ptr.get(ip);
    if (!names) throw dnsError('ENOTFOUND', 'PTR', ip);
    return [...names];
  }

  async resolveDnssec(name: string, type: DnssecRecordType): Promise<DnssecAnswer> {
    const records = await this.resolve(name, type);
    return { records, secure: this.#isSigned(normalize(name)) };
  }

  #isSigned(name: string): boolean {
    const labels = name.split('.');
    const closest = labels.map((_, index) => labels.slice(index).join('.')).find((zone) => this.#zoneSigned.has(zone));
    return closest !== undefined && this.#zoneSigned.get(closest) === true;
  }
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
