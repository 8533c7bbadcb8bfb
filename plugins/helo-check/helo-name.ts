import { isIP } from 'node:net';
import { ipv6Hex, unmapIPv4 } from 'petrel';

/** What a HELO/EHLO argument is, before any policy. */
export type HeloName =
  | { readonly kind: 'literal'; readonly address: string }
  | { readonly kind: 'bare-address'; readonly address: string }
  | { readonly kind: 'hostname'; readonly name: string; readonly qualified: boolean }
  | { readonly kind: 'invalid' };

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/i;

/**
 * Classifies a HELO argument (RFC 5321 4.1.1.1: a domain, or an address
 * literal `[192.0.2.1]` / `[IPv6:2001:db8::1]`). Underscores are tolerated
 * in names: plenty of real Windows hosts have them, and they deceive nobody.
 */
export function classifyHelo(helo: string): HeloName {
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(helo);
  if (literal) {
    const address = literal[1];
    const family = isIP(address);
    const tagged = helo.toLowerCase().startsWith('[ipv6:');
    if ((family === 4 && !tagged) || (family === 6 && tagged)) return { kind: 'literal', address: unmapIPv4(address).toLowerCase() };
    return { kind: 'invalid' };
  }
  if (isIP(helo) !== 0) return { kind: 'bare-address', address: unmapIPv4(helo).toLowerCase() };
  const name = helo.replace(/\.$/, '').toLowerCase();
  if (name.length === 0 || name.length > 253) return { kind: 'invalid' };
  const labels = name.split('.');
  if (!labels.every((label) => LABEL.test(label))) return { kind: 'invalid' };
  // A name whose last label is all digits is an address in disguise (192.0.2), not a host.
  if (/^\d+$/.test(labels[labels.length - 1])) return { kind: 'invalid' };
  return { kind: 'hostname', name, qualified: labels.length > 1 };
}

/** Same address, whatever the spelling (IPv4-mapped, case, zero compression). */
export function sameAddress(a: string, b: string): boolean {
  const left = unmapIPv4(a).toLowerCase();
  const right = unmapIPv4(b).toLowerCase();
  if (left === right) return true;
  return isIP(left) === 6 && isIP(right) === 6 && ipv6Hex(left) === ipv6Hex(right);
}
