import { isIP } from 'node:net';
import { asciiDomain, networkOf, splitAddress, unmapIPv4 } from 'petrel';

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
 * without case and domains as A-labels, so `Alice@Example.ORG` cannot dodge
 * a limit on alice@example.org.
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
    case 'network': {
      const address = keyValue('ip', text.replace(/\/\d+$/, ''), prefixes);
      return address === undefined ? undefined : networkOf(address, prefixes.ipv4Prefix, prefixes.ipv6Prefix);
    }
    case 'sender':
    case 'recipient': {
      const parts = splitAddress(text);
      return parts && `${parts.local}@${parts.domain}`;
    }
    case 'sender-domain':
    case 'recipient-domain': {
      const domain = text.includes('@') ? splitAddress(text)?.domain : asciiDomain(text);
      return domain === undefined || isIP(domain) !== 0 ? undefined : domain;
    }
    case 'helo':
    case 'user':
      return text.toLowerCase();
    case 'listener':
      return text;
  }
}
