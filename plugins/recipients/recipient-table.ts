/**
 * A set of valid recipients as operators write them, one entry each:
 *
 *   alice@example.org   that address
 *   alice               alice at every local domain
 *   @example.org        every address of example.org (a catch-all for one domain)
 *
 * Entries and lookups are lower case; callers pass addresses with the
 * sub-address already removed and the domain in ASCII.
 */
export class RecipientTable {
  readonly #addresses = new Set<string>();
  readonly #localParts = new Set<string>();
  readonly #domains = new Set<string>();

  constructor(entries: Iterable<string>) {
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      if (entry === '') continue;
      if (entry.startsWith('@')) this.#domains.add(entry.slice(1));
      else if (entry.includes('@')) this.#addresses.add(entry);
      else this.#localParts.add(entry);
    }
  }

  get size(): number {
    return this.#addresses.size + this.#localParts.size + this.#domains.size;
  }

  has(localPart: string, domain: string): boolean {
    return this.#addresses.has(`${localPart}@${domain}`) || this.#localParts.has(localPart) || this.#domains.has(domain);
  }
}

/** Parses a recipients file: one entry a line, `#` starts a comment. */
export function parseRecipientFile(text: string): RecipientTable {
  return new RecipientTable(text.split(/\r?\n/).map((line) => line.replace(/#.*/, '')));
}

/**
 * The logins of an auth-file users file (`login:hash` lines) as recipients:
 * a login `alice@example.org` is that address, a bare `alice` is alice at
 * every local domain. Only the part before the first `:` of a line is read.
 */
export function parseLoginFile(text: string): RecipientTable {
  return parseRecipientFile(text.replace(/:.*$/gm, ''));
}
