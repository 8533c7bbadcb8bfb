import addressparser from 'nodemailer/lib/addressparser';

/** An envelope address: local@domain, no spaces or angle brackets (what MAIL FROM and RCPT TO carry). */
const ENVELOPE_ADDRESS = /^[^\s<>@]+@[^\s<>@]+$/;

/**
 * The addresses in an address list as people write them ("Alice
 * <alice@example.org>, bob", groups, comments), parsed by nodemailer's
 * addressparser. A bare name is a local user: it gets `@origin`, as
 * sendmail's `root` becomes root@<server.hostname> (Postfix's myorigin).
 * Returns the addresses, and the entries that are not addresses at all.
 */
export function addressesIn(list: string, origin: string): { addresses: string[]; invalid: string[] } {
  const addresses: string[] = [];
  const invalid: string[] = [];
  for (const entry of addressparser(list, { flatten: true })) {
    // addressparser reads a lone word ("root") as a display name; to sendmail it is a local user
    // (a name of several words is no address, and the check below says so).
    const address = entry.address?.trim() || entry.name.trim();
    if (!address) continue;
    const qualified = address.includes('@') ? address : `${address}@${origin}`;
    if (ENVELOPE_ADDRESS.test(qualified)) addresses.push(qualified);
    else invalid.push(address);
  }
  return { addresses, invalid };
}

/** The envelope sender from -f: "" and "<>" are the null sender. Undefined when it is no address. */
export function senderFrom(value: string, origin: string): string | undefined {
  const trimmed = value.trim();
  if (trimmed === '' || trimmed === '<>') return '';
  const { addresses, invalid } = addressesIn(trimmed, origin);
  return addresses.length === 1 && invalid.length === 0 ? addresses[0] : undefined;
}

/** Each address once, compared without regard to case; the first spelling is kept. */
export function uniqueAddresses(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  return addresses.filter((address) => {
    const key = address.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function isAscii(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}
