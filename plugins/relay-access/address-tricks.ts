/**
 * Recipient addresses that some mail systems reinterpret as routing
 * instructions, and that an open-relay scanner therefore tries:
 *
 *   user%other.example@local.example     percent hack (sendmail %-routing)
 *   other.example!user@local.example     UUCP bang path
 *   @local.example:user@other.example    source route (RFC 5321 C, obsolete)
 *   "user@other.example"@local.example   quoted local part hiding an @
 *   user@local.example.                  trailing dot (a different name to a resolver)
 *   user@[192.0.2.1]                     address literal (no domain to check)
 *
 * A client that is not allowed to relay gets any of these refused, whatever
 * the domain, so that nothing downstream can be talked into forwarding.
 * Returns a short reason, or undefined for an ordinary address.
 */
export function addressTrick(address: string): string | undefined {
  if (address.startsWith('@') || /^@[^:]*:/.test(address)) return 'source route';
  const at = address.lastIndexOf('@');
  if (at <= 0) return 'no domain';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.startsWith('"') || local.includes('"')) {
    if (local.includes('@') || local.includes('%') || local.includes('!')) return 'quoted local part with routing characters';
  }
  if (local.includes('%')) return 'percent hack';
  if (local.includes('!')) return 'bang path';
  if (local.includes('@')) return 'extra @ in the local part';
  if (domain.endsWith('.') || domain.startsWith('.') || domain.includes('..')) return 'malformed domain';
  if (domain.startsWith('[')) return 'address literal';
  if (domain.includes(':') || domain.includes('/') || domain.includes('\\')) return 'malformed domain';
  return undefined;
}

/** The domain of an address, lower case, or undefined. */
export function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  return at <= 0 ? undefined : address.slice(at + 1).toLowerCase();
}
