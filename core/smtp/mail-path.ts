/**
 * The path of a MAIL FROM or RCPT TO command (RFC 5321 4.1.2) where
 * smtp-server's parser falls short. It splits the command at white space
 * before it looks for the path, so `<"john doe"@example.org>`, a valid
 * quoted local part, gets 501; and it hands the domain over in Unicode, so
 * whether the client wrote non-ASCII (which needs SMTPUTF8, RFC 6531) cannot
 * be told from the parsed address.
 *
 * This finds the path in the command line as the client wrote it, checks a
 * quoted local part against the grammar, and gives smtp-server the command
 * with that local part replaced by a plain atom; the caller puts it back into
 * the address smtp-server parsed. Everything else about the path (source
 * routes, the domain, address literals, IDNs, parameters) stays smtp-server's.
 */

/** What smtp-server is given instead of a quoted local part: a dot-atom it accepts as is. */
const PLACEHOLDER = 'quoted-local-part';

/** RFC 5321 4.5.3.1.3: a path is at most 256 octets, `<` and `>` included (smtp-server's own limit). */
const MAX_MAILBOX_LENGTH = 253;

/** Never in an address: control characters and invisible formatting characters (smtp-server refuses them too). */
const UNSAFE = /[\x00-\x1F\x7F-\x9F\u200B\u2060\uFEFF]/;

/** Dot-string (RFC 5321 4.1.2): what a local part may be without quotes. */
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** A source route (`@relay.example,@other.example:`), which may come before the mailbox and is ignored. */
const SOURCE_ROUTE = /^@[^\s,:@"<>]+(?:,@[^\s,:@"<>]+)*:/;

export interface MailPath {
  /** The path as written, `<` and `>` included. */
  readonly text: string;
  /** The command line for smtp-server: unchanged, or with a quoted local part replaced by a placeholder. */
  readonly command: string;
  /** Puts a quoted local part back into the address smtp-server parsed from `command`. */
  restore(address: string): string;
}

/**
 * The path of `command`; undefined when there is no `<…>` after the colon
 * (smtp-server answers that with its own 501); 'invalid' when a quoted local
 * part breaks the grammar or makes the path too long.
 */
export function mailPath(command: string): MailPath | 'invalid' | undefined {
  const colon = command.indexOf(':');
  if (colon < 0) return undefined;
  let open = colon + 1;
  while (command[open] === ' ') open++;
  if (command[open] !== '<') return undefined;
  const route = SOURCE_ROUTE.exec(command.slice(open + 1));
  const mailbox = open + 1 + (route ? route[0].length : 0);
  if (command[mailbox] !== '"') {
    const close = command.indexOf('>', open);
    if (close < 0) return undefined;
    return { text: command.slice(open, close + 1), command, restore: (address) => address };
  }
  const quoted = readQuotedString(command, mailbox);
  if (quoted === undefined || command[quoted.end] !== '@') return 'invalid';
  const close = command.indexOf('>', quoted.end);
  if (close < 0) return 'invalid';
  // Kept in one spelling, as Postfix does: without quotes when none are needed
  // ("john"@ is john@), else quoted with only `"` and `\` escaped.
  const localPart = DOT_STRING.test(quoted.content) ? quoted.content : `"${quoted.content.replace(/["\\]/g, '\\$&')}"`;
  if (Buffer.byteLength(localPart + command.slice(quoted.end, close)) > MAX_MAILBOX_LENGTH) return 'invalid';
  return {
    text: command.slice(open, close + 1),
    command: command.slice(0, mailbox) + PLACEHOLDER + command.slice(quoted.end),
    restore: (address) => localPart + address.slice(PLACEHOLDER.length),
  };
}

/**
 * Quoted-string = DQUOTE *QcontentSMTP DQUOTE, where QcontentSMTP is qtextSMTP
 * (printable ASCII but `"` and `\`, space included) or a quoted-pair (`\` and a
 * printable ASCII character). Non-ASCII is let through here: RFC 6531 allows it
 * with SMTPUTF8, and the envelope rules refuse it without.
 */
function readQuotedString(text: string, start: number): { content: string; end: number } | undefined {
  let content = '';
  for (let at = start + 1; at < text.length; at++) {
    const char = text[at];
    if (char === '"') return { content, end: at + 1 };
    if (char === '\\') {
      const escaped = text.charCodeAt(at + 1);
      if (!(escaped >= 32 && escaped <= 126)) return undefined;
      content += text[++at];
    } else if (UNSAFE.test(char)) {
      return undefined;
    } else {
      content += char;
    }
  }
  return undefined;
}
