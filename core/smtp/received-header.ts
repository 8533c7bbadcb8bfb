import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import type { Session } from '../session.js';

export interface ReceivedFields {
  readonly session: Session;
  /** smtp-server's transmission type: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA. */
  readonly protocol: string;
  /** The transaction used SMTPUTF8 (RFC 6531), which has protocol names of its own. */
  readonly smtpUtf8: boolean;
  readonly byHost: string;
  readonly queueId: string;
  /** Named only when there is exactly one, so a Bcc list is not disclosed. */
  readonly recipients: readonly string[];
  readonly date: Date;
}

/**
 * The Received trace field (RFC 5321 4.4, RFC 3848 and RFC 6531 3.7.3
 * protocol names), in the shape Postfix writes and operators read:
 *
 *   Received: from helo.name (client.name [192.0.2.1])
 *   	by mx.example.org (Petrel) with ESMTPS id <queue id>
 *   	(TLSv1.3 TLS_AES_256_GCM_SHA384)
 *   	for <rcpt@example.org>;
 *   	Sat, 28 Nov 2026 18:00:00 +0000
 *
 * The HELO name is the client's to choose; one that is not a domain or an
 * address literal would break the field's grammar (`x)(y`, `a;b`), so it is
 * then written as a comment, escaped, after the client's address:
 * `from [192.0.2.1] (unknown [192.0.2.1] helo=x\)\(y)`.
 */
export function receivedHeader(fields: ReceivedFields): string {
  const { session } = fields;
  const literal = addressLiteral(session.remote.address);
  const client = `${session.remote.hostname ?? 'unknown'} ${literal}`;
  const helo = session.helo === undefined ? undefined : heloDomain(session.helo);
  const from =
    session.helo === undefined
      ? `from ${literal} (${client})`
      : helo === undefined
        ? `from ${literal} (${client} helo=${commentText(session.helo)})`
        : `from ${helo} (${client})`;
  const parts = [from];
  parts.push(`by ${fields.byHost} (Petrel) with ${protocolName(fields.protocol, fields.smtpUtf8)} id ${fields.queueId}`);
  if (session.tls.secure && session.tls.protocol) {
    parts.push(`(${session.tls.protocol}${session.tls.cipher ? ` ${session.tls.cipher}` : ''})`);
  }
  if (fields.recipients.length === 1) parts.push(`for <${fields.recipients[0]}>`);
  return `${parts.join('\r\n\t')};\r\n\t${rfc5322Date(fields.date)}`;
}

/** RFC 5321 4.1.3: `[192.0.2.1]`, `[IPv6:2001:db8::1]`. */
export function addressLiteral(ip: string): string {
  return isIPv6(ip) ? `[IPv6:${ip}]` : `[${ip}]`;
}

/**
 * RFC 6531 3.7.3: a transaction with SMTPUTF8 is UTF8SMTP, UTF8SMTPS,
 * UTF8SMTPA or UTF8SMTPSA instead of ESMTP, ESMTPS, ESMTPA, ESMTPSA.
 */
export function protocolName(protocol: string, smtpUtf8: boolean): string {
  return smtpUtf8 && protocol.startsWith('ESMTP') ? `UTF8SMTP${protocol.slice('ESMTP'.length)}` : protocol;
}

/** RFC 5321 Domain: letter-digit-hyphen labels. */
const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;

const NON_ASCII = /[^\x00-\x7F]/;

/**
 * The HELO name as the From-domain may carry it: a domain (an IDN in its
 * A-label form, so the field stays ASCII) or an address literal; undefined
 * for anything else.
 */
function heloDomain(helo: string): string | undefined {
  const literal = /^\[(.*)\]$/.exec(helo);
  if (literal) {
    const address = literal[1];
    const v6 = /^IPv6:/i.test(address) ? address.slice(5) : undefined;
    return (v6 !== undefined ? isIPv6(v6) : isIPv4(address)) ? helo : undefined;
  }
  const ascii = NON_ASCII.test(helo) ? domainToASCII(helo) : helo;
  return ascii !== '' && DOMAIN.test(ascii) ? ascii : undefined;
}

/** Text that is safe inside a comment (RFC 5322 3.2.2): parentheses and backslashes escaped, printable ASCII only. */
function commentText(text: string): string {
  return text.replace(/[^\x21-\x7E]/g, '?').replace(/[()\\]/g, '\\$&');
}

/**
 * The Received field of a message a local program handed to `petrel sendmail`,
 * in the shape Postfix writes for its sendmail command (the uid is what the
 * kernel says made the maildrop file):
 *
 *   Received: by mx.example.org (Petrel, from userid 1000)
 *   	id <queue id>
 *   	for <rcpt@example.org>;
 *   	Sat, 28 Nov 2026 18:00:00 +0000
 */
export function localReceivedHeader(fields: Omit<ReceivedFields, 'session' | 'protocol' | 'smtpUtf8'> & { readonly uid: number }): string {
  const parts = [`by ${fields.byHost} (Petrel, from userid ${fields.uid})`, `id ${fields.queueId}`];
  if (fields.recipients.length === 1) parts.push(`for <${fields.recipients[0]}>`);
  return `${parts.join('\r\n\t')};\r\n\t${rfc5322Date(fields.date)}`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Sat, 28 Nov 2026 18:00:00 +0000` (RFC 5322 3.3), always in UTC. */
export function rfc5322Date(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`
  );
}
