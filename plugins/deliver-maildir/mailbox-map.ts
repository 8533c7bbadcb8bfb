import { splitAddress } from 'petrel';

/** Where one recipient's copy goes, relative to the maildir root. */
export interface MailboxTarget {
  /** The mailbox directory (`alice`, or `example.org/alice` with a `{domain}` template). */
  readonly mailbox: string;
  /** A Maildir++ folder inside it (`.lists` for `alice+lists@`), when sub-address folders are on. */
  readonly folder?: string;
}

export interface MailboxMapSettings {
  /** `{local}` and `{domain}` are replaced: `{local}` (one domain) or `{domain}/{local}` (several). */
  readonly template: string;
  /** Address, `@domain` or bare local part → mailbox, checked in that order before the template. */
  readonly mailboxes: Readonly<Record<string, string>>;
  /** `+` by default; empty turns sub-addresses off (`a+b` is then a mailbox of its own). */
  readonly separator: string;
  /** Put `alice+lists@` into alice's `.lists` folder instead of her inbox. */
  readonly folders: boolean;
}

/**
 * Maps a recipient address to a maildir: explicit `mailboxes` entries
 * first (aliases, catch-alls), then the template. Local parts are compared
 * in lower case with their `+tag` removed. Every name that reaches the
 * file system is made safe first (safeName): an address can never name a
 * path outside the maildir root, whatever characters its local part has.
 */
export class MailboxMap {
  readonly #mailboxes: Map<string, string>;

  constructor(private readonly settings: MailboxMapSettings) {
    this.#mailboxes = new Map(Object.entries(settings.mailboxes).map(([key, mailbox]) => [key.toLowerCase(), mailbox]));
  }

  targetOf(address: string): MailboxTarget | undefined {
    const base = splitAddress(address, this.settings.separator);
    if (!base) return undefined;
    const full = splitAddress(address);
    const tag = full && full.local !== base.local ? full.local.slice(base.local.length + this.settings.separator.length) : '';
    const mapped =
      this.#mailboxes.get(`${base.local}@${base.domain}`) ?? this.#mailboxes.get(`@${base.domain}`) ?? this.#mailboxes.get(base.local);
    const mailbox =
      mapped ?? this.settings.template.replaceAll('{local}', safeName(base.local)).replaceAll('{domain}', safeName(base.domain));
    return this.settings.folders && tag !== '' ? { mailbox, folder: `.${safeName(tag)}` } : { mailbox };
  }
}

/**
 * A name fit for one path segment: lower-case letters, digits and `-_=+`
 * stay, a dot stays except in front, everything else (slashes, NUL,
 * non-ASCII, spaces) becomes `%XX` of its UTF-8 bytes. `..` and hidden
 * names cannot come out of it.
 */
export function safeName(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    const plain = /[a-z0-9\-_=+]/.test(char) || (char === '.' && out !== '');
    out += plain ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out === '' ? '%00' : out;
}

/** Why a configured mailbox path is unsafe (absolute, `..`, empty segments), or undefined when it is fine. */
export function mailboxPathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return 'must be relative to the maildir root';
  if (path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) return 'must not contain empty, "." or ".." segments';
  return undefined;
}
