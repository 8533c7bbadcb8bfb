/**
 * Reading and writing the trace fields mailauth produces.
 */

export interface TraceField {
  readonly name: string;
  /** As mailauth folded it (CRLF + space between clauses). */
  readonly value: string;
}

/** Splits mailauth's `headers` text ("Name: value\r\n folded\r\nName2: ...\r\n") into fields, in order. */
export function splitHeaderFields(block: string): TraceField[] {
  return block
    .split(/\r?\n(?![ \t])/)
    .filter((field) => field.trim() !== '')
    .map((field) => {
      const colon = field.indexOf(':');
      return { name: field.slice(0, colon).trim(), value: field.slice(colon + 1).replace(/^[ \t]+/, '') };
    });
}

/**
 * The authserv-id an Authentication-Results value starts with (RFC 8601
 * 2.2: optional comments and whitespace, then a token or quoted string, then
 * an optional version, then `;`), lower case; undefined if there is none.
 */
export function authservIdOf(value: string): string | undefined {
  const rest = skipCommentsAndSpace(value);
  if (rest.startsWith('"')) {
    const end = rest.indexOf('"', 1);
    return end < 0 ? undefined : rest.slice(1, end).toLowerCase();
  }
  const token = /^[^\s;()"]+/.exec(rest);
  return token ? token[0].toLowerCase() : undefined;
}

/**
 * True for a Received-SPF field written in our name: mailauth and most SPF
 * checkers put the receiver first in the comment, `pass (mx.example: ...)`,
 * and RFC 7208 9.1 allows `receiver=mx.example`.
 */
export function receivedSpfClaims(value: string, receiver: string): boolean {
  const host = receiver.toLowerCase();
  const lower = value.toLowerCase();
  const comment = /^\s*[a-z]+\s*\(\s*([^\s:()]+)\s*:/.exec(lower);
  return comment?.[1] === host || new RegExp(`(?:^|[;\\s])receiver=${escapeRegExp(host)}(?:[;\\s]|$)`).test(lower);
}

function skipCommentsAndSpace(value: string): string {
  let text = value.trimStart();
  while (text.startsWith('(')) {
    let depth = 0;
    let index = 0;
    for (; index < text.length; index++) {
      if (text[index] === '\\') index++;
      else if (text[index] === '(') depth++;
      else if (text[index] === ')' && --depth === 0) break;
    }
    text = text.slice(index + 1).trimStart();
  }
  return text;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
