import { encodeWord, quoteString } from 'nodemailer/lib/mime-funcs';
import { rfc5322Date } from '../smtp/received-header.js';
import { MessageHeaders } from '../spool/message-headers.js';
import { EXIT } from '../cli/exit-codes.js';
import { SendmailFailure } from './sendmail-failure.js';
import { addressesIn } from './submission-addresses.js';

export interface HeaderContext {
  /** -t: collect the recipients from the address fields. */
  readonly extractRecipients: boolean;
  /** The envelope sender ('' for the null sender). */
  readonly sender: string;
  /** -F or $NAME, for a From: this function adds. */
  readonly fullName?: string;
  /** server.hostname: qualifies bare names, names the Message-ID. */
  readonly origin: string;
  /** The queue id the message will have, for a Message-ID this function adds. */
  readonly queueId: string;
  readonly now: Date;
}

/**
 * What sendmail does to the header block of a locally submitted message
 * (Postfix's cleanup for mail from the sendmail command):
 *
 * - with -t, the recipients are the addresses in To:, Cc: and Bcc:, or, when
 *   the message has any Resent-To/Cc/Bcc field (it is being resent), in those;
 * - Bcc: and Resent-Bcc: are removed, always: they name recipients the others
 *   must not see;
 * - a missing From: (the envelope sender, with -F's full name), Date: or
 *   Message-ID: is added at the end, as RFC 5322 requires them.
 *
 * Fields are parsed and edited through MessageHeaders (mailsplit), addresses
 * through nodemailer's addressparser. The block keeps its other bytes as they were.
 */
export function prepareHeaders(block: Buffer, context: HeaderContext): { headerBlock: Buffer; recipients: string[] } {
  const headers = new MessageHeaders(block);
  const recipients: string[] = [];
  if (context.extractRecipients) {
    const resent = ['resent-to', 'resent-cc', 'resent-bcc'].some((name) => headers.has(name));
    const fields = resent ? ['resent-to', 'resent-cc', 'resent-bcc'] : ['to', 'cc', 'bcc'];
    for (const field of fields) {
      for (const value of headers.get(field)) {
        const { addresses, invalid } = addressesIn(value, context.origin);
        if (invalid.length > 0) throw new SendmailFailure(EXIT.dataErr, `${headerName(field)}: "${invalid[0]}" is not an address; nothing was sent`);
        recipients.push(...addresses);
      }
    }
  }
  headers.remove('bcc');
  headers.remove('resent-bcc');
  if (!headers.has('from')) headers.append('From', fromField(context));
  if (!headers.has('date')) headers.append('Date', rfc5322Date(context.now));
  if (!headers.has('message-id')) headers.append('Message-ID', `<${context.queueId}@${context.origin}>`);
  return { headerBlock: headers.toBuffer(), recipients };
}

function fromField(context: HeaderContext): string {
  const address = context.sender === '' ? `MAILER-DAEMON@${context.origin}` : context.sender;
  const name = context.fullName?.trim();
  return name ? `${displayName(name)} <${address}>` : address;
}

/** A display name as RFC 5322 wants it: as is when plain, quoted when it has specials, an encoded word when not ASCII. */
function displayName(name: string): string {
  if (/^[\w '-]*$/.test(name)) return name;
  if (/^[\x20-\x7e]*$/.test(name)) return quoteString(name);
  return encodeWord(name, 'Q', 52);
}

function headerName(field: string): string {
  return field.replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => `${dash}${letter.toUpperCase()}`);
}
