import type { DNSResolver } from 'mailauth';
import type { DnsResolver, RecordType } from 'petrel';

/**
 * Petrel's resolver in the shape mailauth calls (`resolver(name, type)`),
 * remembering every answer for the life of one transaction: SPF is checked
 * at MAIL FROM and again inside authenticate() at the end of DATA, and the
 * second check must see the same answers (and cost no queries).
 */
export function memoResolver(dns: DnsResolver): DNSResolver {
  const answers = new Map<string, Promise<unknown[]>>();
  return (name: string, type: string) => {
    const key = `${type} ${name.toLowerCase()}`;
    let answer = answers.get(key);
    if (!answer) {
      answer = dns.resolve(name, type as RecordType);
      answers.set(key, answer);
    }
    return answer as Promise<string[][] | string[]>;
  };
}
