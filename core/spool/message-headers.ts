import { Headers } from 'mailsplit';

/** One header field, name as written and value unfolded (CRLF + WSP joined). */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/**
 * The header block of a message, parsed by mailsplit and editable by plugins.
 *
 * Header bytes are kept as "binary" (latin1) strings internally, which is what
 * mailsplit uses so that 8-bit and UTF-8 header bytes pass through unchanged;
 * this class decodes to and encodes from UTF-8 at its edges so plugin authors
 * only see normal strings.
 */
export class MessageHeaders {
  readonly #headers: Headers;

  constructor(block: Buffer) {
    // A message may start with the empty line (no header fields at all).
    const empty = block.length === 0 || (block.length === 2 && block[0] === 13 && block[1] === 10);
    this.#headers = new Headers(empty ? [] : block);
    keepFirstField(this.#headers);
    this.#headers.changed = false;
  }

  /** All values of a field, in message order, unfolded and trimmed. */
  get(name: string): string[] {
    return this.#headers.get(name).map((line) => valueOf(line));
  }

  getFirst(name: string): string | undefined {
    return this.get(name)[0];
  }

  has(name: string): boolean {
    return this.#headers.hasHeader(name);
  }

  /** Every field in message order. */
  list(): HeaderField[] {
    return this.#headers.getList().map((entry) => ({ name: nameOf(entry.line), value: valueOf(entry.line) }));
  }

  /**
   * Every field in message order with its value as the bytes after the colon,
   * folding and leading space kept: what a filter that hashes headers (DKIM
   * with simple canonicalization) must see.
   */
  rawList(): { name: string; value: Buffer }[] {
    return this.#headers.getList().map((entry) => {
      const colon = entry.line.indexOf(':');
      return { name: nameOf(entry.line), value: Buffer.from(colon < 0 ? '' : entry.line.slice(colon + 1), 'binary') };
    });
  }

  /**
   * Adds a field at the top of the header block, where trace fields
   * (Received, Authentication-Results) belong (RFC 5321 4.4).
   */
  prepend(name: string, value: string): void {
    this.#add(name, value, 0);
  }

  /** Adds a field at the bottom of the header block. */
  append(name: string, value: string): void {
    this.#add(name, value, Number.MAX_SAFE_INTEGER);
  }

  /**
   * Adds a field before the field at `index` of the block (0 is the top; an
   * index past the end adds at the bottom). Filters that sign or trace (a
   * milter's insheader) choose their place this way.
   */
  insert(index: number, name: string, value: string): void {
    this.#add(name, value, Math.max(0, Math.floor(index)));
  }

  /**
   * Replaces the `occurrence`-th field (1 = first) called `name` in its place,
   * or removes it when `value` is undefined. False when there is no such field.
   */
  replace(name: string, occurrence: number, value: string | undefined): boolean {
    const key = name.toLowerCase();
    const lines = this.#headers.getList();
    let seen = 0;
    const at = lines.findIndex((line) => line.key === key && ++seen === occurrence);
    if (at < 0) return false;
    lines.splice(at, 1);
    this.#headers.changed = true;
    if (value !== undefined) this.#add(name, value, at);
    return true;
  }

  /**
   * A value folded by the caller (CRLF + space/tab, to break at meaningful
   * places) is kept as folded; otherwise mailsplit folds it at 76 columns.
   * Any other CR or LF becomes a space: a value must never start a new field.
   */
  #add(name: string, value: string, index: number): void {
    const folded = value.includes('\r\n');
    const clean = value.replace(/\r\n(?=[ \t])|[\r\n]/g, (match) => (match.length === 2 ? match : ' '));
    if (folded) this.#headers.addFormatted(name, Buffer.from(`${name}: ${clean}`, 'utf8').toString('binary'), index);
    else this.#headers.add(name, Buffer.from(clean, 'utf8'), index);
  }

  /** Removes every field with this name. */
  remove(name: string): void {
    this.#headers.remove(name);
  }

  /**
   * Removes the fields with this name for which `match` returns true; used to
   * strip forged trace fields while keeping genuine ones.
   */
  removeWhere(name: string, match: (value: string) => boolean): number {
    const key = name.toLowerCase();
    // getList() is mailsplit's own array, so removing from it edits the block.
    const lines = this.#headers.getList();
    let removed = 0;
    for (let i = lines.length - 1; i >= 0; i--) {
      if (lines[i].key === key && match(valueOf(lines[i].line))) {
        lines.splice(i, 1);
        removed++;
      }
    }
    if (removed > 0) this.#headers.changed = true;
    return removed;
  }

  /** True when a plugin added or removed something. */
  get changed(): boolean {
    return this.#headers.changed;
  }

  /** The header block with its terminating empty line, CRLF line ends. */
  toBuffer(): Buffer {
    // Unchanged headers go out byte for byte (DKIM signatures depend on it).
    if (this.#headers.getList().length === 0) return Buffer.from('\r\n');
    return this.#headers.changed ? this.#headers.build('\r\n') : this.#headers.build();
  }
}

/**
 * mailsplit takes a first line that starts with `From ` for an mbox separator (and `POST `
 * for an HTTP request line) and leaves it out of every lookup, though the block it writes
 * keeps it. In a message received over SMTP that line is a header field: `From : Bob
 * <bob@example.org>` is From: in RFC 5322's obsolete syntax, which readers accept, so a
 * check of the header From (relay-access) must see it. It goes back into the list, once.
 */
function keepFirstField(headers: Headers): void {
  const lines = headers.getList();
  for (const kind of ['mbox', 'http'] as const) {
    const line = headers[kind];
    if (line === false) continue;
    lines.unshift({ key: nameOf(line).toLowerCase(), line });
    headers[kind] = false;
  }
}

function nameOf(line: string): string {
  const colon = line.indexOf(':');
  return (colon < 0 ? line : line.slice(0, colon)).trim();
}

function valueOf(line: string): string {
  const colon = line.indexOf(':');
  const raw = colon < 0 ? '' : line.slice(colon + 1);
  return Buffer.from(raw, 'binary').toString('utf8').replace(/\r?\n(?=[ \t])/g, '').trim();
}
