import { isIP } from 'node:net';
import { unmapIPv4 } from './networks.js';

/**
 * Address arithmetic the policy plugins share: the network a client belongs
 * to (greylisting and AUTH lockouts treat a /24 or a /64 as one sender,
 * since a big sender retries from a neighbouring address and an IPv6 host
 * owns its whole /64), and the full form of IPv6 addresses that DNSBL query
 * names are built from.
 */

/** The eight 16-bit groups of an IPv6 address, `::` and an embedded IPv4 tail expanded. */
export function ipv6Groups(address: string): number[] {
  if (isIP(address) !== 6) throw new TypeError(`not an IPv6 address: ${address}`);
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

/** `2001:db8::1` → `20010db8000000000000000000000001`. */
export function ipv6Hex(address: string): string {
  return ipv6Groups(address)
    .map((group) => group.toString(16).padStart(4, '0'))
    .join('');
}

/**
 * The network of `address` as text: `192.0.2.0/24`, `2001:db8:1:2::/64`.
 * IPv4-mapped IPv6 addresses count as IPv4. Returns the address unchanged
 * when it is not an IP address at all (a Unix socket path, say).
 */
export function networkOf(address: string, ipv4Prefix: number, ipv6Prefix: number): string {
  const plain = unmapIPv4(address);
  const family = isIP(plain);
  if (family === 4) {
    const value = plain.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
    const masked = ipv4Prefix === 0 ? 0 : Math.floor(value / 2 ** (32 - ipv4Prefix)) * 2 ** (32 - ipv4Prefix);
    const octets = [24, 16, 8, 0].map((shift) => Math.floor(masked / 2 ** shift) % 256);
    return `${octets.join('.')}/${ipv4Prefix}`;
  }
  if (family === 6) {
    const bits = ipv6Groups(plain).map((group, index) => {
      const keep = Math.max(0, Math.min(16, ipv6Prefix - index * 16));
      return keep === 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff;
    });
    return `${compressIPv6(bits)}/${ipv6Prefix}`;
  }
  return address;
}

/** Canonical text of eight groups (RFC 5952: the longest run of zero groups becomes `::`). */
function compressIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; ) {
    if (groups[start] !== 0) {
      start++;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength && end - start > 1) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
