import { asciiDomain, splitAddress } from 'petrel';

/**
 * Which envelope senders an authenticated login may use (Postfix calls this
 * smtpd_sender_login_maps). A login owns:
 *
 *   - the address it is, when the login is an address (alice@example.org);
 *   - login@domain for every local domain, when the login is a bare name (alice);
 *   - what the `senderLogins` map gives it: keys are addresses or `@domain`
 *     (every address of the domain), values the logins allowed to use them.
 *
 * Sub-addresses count as their base address (alice+lists@ is alice@), and
 * the null sender `<>` is always owned: it claims nobody's identity (relay-access
 * still keeps it to local recipients). The same rules hold for the addresses of
 * the header From: and Sender: fields.
 */
export class SenderOwnership {
  readonly #map = new Map<string, Set<string>>();

  /** `localDomains` as asciiDomain spells them. */
  constructor(
    private readonly localDomains: ReadonlySet<string>,
    senderLogins: Readonly<Record<string, readonly string[]>>,
    private readonly subaddressSeparator: string,
  ) {
    for (const [sender, logins] of Object.entries(senderLogins)) {
      const key = sender.startsWith('@') ? `@${asciiDomain(sender.slice(1))}` : (this.#canonical(sender) ?? sender.toLowerCase());
      this.#map.set(key, new Set(logins.map((login) => login.toLowerCase())));
    }
  }

  owns(login: string, sender: string): boolean {
    if (sender === '') return true;
    const address = this.#canonical(sender);
    if (address === undefined) return false;
    const user = login.toLowerCase();
    if (user.includes('@')) {
      if (this.#canonical(user) === address) return true;
    } else if ([...this.localDomains].some((domain) => `${user}@${domain}` === address)) {
      return true;
    }
    const domain = address.slice(address.lastIndexOf('@'));
    return this.#map.get(address)?.has(user) === true || this.#map.get(domain)?.has(user) === true;
  }

  #canonical(address: string): string | undefined {
    const parts = splitAddress(address, this.subaddressSeparator);
    return parts && `${parts.local}@${parts.domain}`;
  }
}
