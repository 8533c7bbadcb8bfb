import type { DnsResolver, RecordType } from '../../core/dns/resolver.js';

export type FakeRecords = Partial<Record<RecordType, unknown[]>>;

/**
 * DNS answered from a table, the one thing tests may not do for real. Names
 * are matched case-insensitively without a trailing dot. Unknown names fail
 * with ENOTFOUND, known names without that type with ENODATA, exactly as
 * node:dns does, so code under test sees real-looking failures.
 *
 *   const dns = new FakeDns({ 'example.org': { MX: [{ exchange: 'mx.example.org', priority: 10 }] } });
 */
export class FakeDns implements DnsResolver {
  readonly #zones = new Map<string, FakeRecords>();
  readonly #ptr = new Map<string, string[]>();
  readonly #failing = new Map<string, string>();
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

  /** Makes lookups of `name` fail with a resolver error such as ETIMEOUT or ESERVFAIL. */
  fail(name: string, code: string): this {
    this.#failing.set(normalize(name), code);
    return this;
  }

  async resolve(name: string, type: RecordType): Promise<unknown[]> {
    const key = normalize(name);
    this.queries.push(`${type} ${key}`);
    const failure = this.#failing.get(key);
    if (failure) throw dnsError(failure, type, name);
    const zone = this.#zones.get(key);
    if (!zone) throw dnsError('ENOTFOUND', type, name);
    const answers = zone[type];
    if (!answers || answers.length === 0) throw dnsError('ENODATA', type, name);
    return structuredClone(answers);
  }

  async reverse(ip: string): Promise<string[]> {
    this.queries.push(`PTR ${ip}`);
    const names = this.#ptr.get(ip);
    if (!names) throw dnsError('ENOTFOUND', 'PTR', ip);
    return [...names];
  }
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function dnsError(code: string, type: string, name: string): Error {
  return Object.assign(new Error(`query${type} ${code} ${name}`), { code, hostname: name });
}
