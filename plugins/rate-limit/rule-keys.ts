import { isIP } from 'node:net';
import { unmapIPv4 } from '../../core/util/networks.js';

/** What a rule counts per: the parts of a session or message a counter is keyed by. */
export const KEY_KINDS = ['ip', 'network', 'helo', 'sender', 'sender-domain', 'user', 'recipient', 'recipient-domain', 'listener'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

/** Keys known from the session alone (no message needed). */
export const SESSION_KEY_KINDS: readonly KeyKind[] = ['ip', 'network', 'helo', 'user', 'listener'];
/** Keys that differ per recipient of one message. */
export const RECIPIENT_KEY_KINDS: readonly KeyKind[] = ['recipient', 'recipient-domain'];

export interface NetworkPrefixes {
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
}

/**
 * The counter key for `kind` from a raw value: the client address (ip,
 * network), the HELO name, an address (sender, recipient, or a domain kind,
 * which takes the part after @), the user name, or the listener name.
 * Undefined when the value does not fit the kind (no sender for `<>`, no
 * user before AUTH). Addresses, domains, names and users are compared
 * without case, so `Alice@Example.ORG` cannot dodge a limit on alice@example.org.
 *
 * `petrel limits show VALUE` runs an operator's text through the same
 * function, so what it shows is exactly the key the server counts.
 */
export function keyValue(kind: KeyKind, raw: string | undefined, prefixes: NetworkPrefixes): string | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (text === '') return undefined;
  switch (kind) {
    case 'ip': {
      const address = unmapIPv4(text);
      return isIP(address) === 0 ? undefined : address.toLowerCase();
    }
    case 'network':
      return networkOf(text.replace(/\/\d+$/, ''), prefixes);
    case 'sender':
    case 'recipient':
      return text.includes('@') ? text.toLowerCase() : undefined;
    case 'sender-domain':
    case 'recipient-domain': {
      const domain = text.slice(text.lastIndexOf('@') + 1).toLowerCase();
      return domain === '' || isIP(domain) !== 0 ? undefined : domain;
    }
    case 'helo':
    case 'user':
      return text.toLowerCase();
    case 'listener':
      return text;
  }
}

/**
 * The network an address belongs to, as `192.0.2.0/24` or `2001:db8:1:2::/64`:
 * clients that rotate through neighbouring addresses (or an IPv6 host, which
 * owns a whole /64) share one counter.
 */
export function networkOf(address: string, prefixes: NetworkPrefixes): string | undefined {
  const plain = unmapIPv4(address);
  const family = isIP(plain);
  if (family === 4) {
    const value = plain.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
    const size = 2 ** (32 - prefixes.ipv4Prefix);
    const masked = Math.floor(value / size) * size;
    const octets = [3, 2, 1, 0].map((shift) => Math.floor(masked / 256 ** shift) % 256);
    return `${octets.join('.')}/${prefixes.ipv4Prefix}`;
  }
  if (family === 6) {
    const groups = ipv6Groups(plain);
    let bits = prefixes.ipv6Prefix;
    const masked = groups.map((group) => {
      const keep = Math.max(0, Math.min(16, bits));
      bits -= 16;
      return keep === 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff;
    });
    return `${compressIPv6(masked)}/${prefixes.ipv6Prefix}`;
  }
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (`::` and an IPv4 tail expanded). */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0].toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (isIP(tail) === 4) {
    const [a, b, c, d] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  return [...headGroups, ...Array<string>(zeros).fill('0'), ...restGroups].map((group) => Number.parseInt(group, 16));
}

/** RFC 5952 text: the longest run of zero groups (two or more) becomes `::`. */
function compressIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start++;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
