import { isIP } from 'node:net';
import { ipv6Hex, unmapIPv4 } from 'petrel';

/**
 * The DNS name a blocklist is asked about an address (RFC 5782 2.1, 2.4):
 * IPv4 octets reversed, IPv6 nibbles reversed, then the zone.
 *
 *   192.0.2.99  + zen.example  → 99.2.0.192.zen.example
 *   2001:db8::1 + zen.example  → 1.0.0.0. … .8.b.d.0.1.0.0.2.zen.example
 *
 * Undefined for something that is not an IP address.
 */
export function dnsblQueryName(address: string, zone: string): string | undefined {
  const plain = unmapIPv4(address);
  const family = isIP(plain);
  if (family === 4) return `${plain.split('.').reverse().join('.')}.${zone}`;
  if (family === 6) return `${ipv6Hex(plain).split('').reverse().join('.')}.${zone}`;
  return undefined;
}
