import { BlockList, isIP } from 'node:net';

/** A set of CIDR networks (IPv4 and IPv6) to test client addresses against. */
export class NetworkList {
  readonly #list = new BlockList();
  readonly entries: readonly string[];

  /** Throws with the offending entry if one is not `address/prefix` or a bare address. */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const parsed = parseCidr(cidr);
      if (!parsed) throw new Error(`"${cidr}" is not an IPv4 or IPv6 network like 192.0.2.0/24 or 2001:db8::/32`);
      this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
    this.entries = cidrs;
  }

  contains(address: string): boolean {
    const plain = unmapIPv4(address);
    const family = isIP(plain);
    if (family === 0) return false;
    return this.#list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }
}

export function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, prefixText, ...rest] = cidr.trim().split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) return undefined;
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; other addresses unchanged. */
export function unmapIPv4(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** 127.0.0.0/8 and ::1, also in IPv4-mapped form. */
export function isLoopback(address: string): boolean {
  const plain = unmapIPv4(address);
  if (isIP(plain) === 4) return plain.startsWith('127.');
  return plain === '::1';
}
