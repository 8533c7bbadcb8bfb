import type { Readable } from 'node:stream';
import MimeNode from 'nodemailer/lib/mime-node';
import type { QueuedMessage } from '../queue/contract.js';
import { rfc5322Date } from '../smtp/received-header.js';
import type { DeliveryReply } from './outbound.js';

/**
 * Delivery status notifications (RFC 3464): a multipart/report with a
 * human-readable part, a message/delivery-status part (one block per
 * recipient) and the original message or its headers. The MIME is built by
 * nodemailer's MimeNode; this file only decides what goes in.
 */

/** RFC 3464 2.3.3; `relayed`: handed to an MTA that does not support DSN (RFC 3461 5.2.2). */
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed';

export interface DsnRecipient {
  readonly address: string;
  /** RFC 3461 ORCPT as the client gave it (`rfc822;user@example.org`). */
  readonly orcpt?: string;
  readonly action: DsnAction;
  readonly reply: DeliveryReply;
  /** When the last attempt for this recipient was made, epoch ms. */
  readonly lastAttemptAt?: number;
}

export interface DsnInput {
  /** Our host name (Reporting-MTA, Message-ID). */
  readonly reportingMta: string;
  /** The From: of the report. */
  readonly from: string;
  /** Who gets the report (the original envelope sender, or the postmaster). */
  readonly to: string;
  readonly message: QueuedMessage;
  readonly recipients: readonly DsnRecipient[];
  /** 'full': the whole original (message/rfc822); 'headers': text/rfc822-headers. */
  readonly returnContent: 'full' | 'headers';
  /** The original message (header block then body); for 'headers' only the header block is used. */
  readonly original: Readable | Buffer;
  /** For delay reports: until when we keep trying (Will-Retry-Until). */
  readonly willRetryUntil?: number;
  readonly now: number;
  /** Set for a double bounce sent to the postmaster (changes the wording). */
  readonly toPostmaster?: boolean;
}

const SUBJECTS: Record<DsnAction, string> = {
  failed: 'Undelivered Mail Returned to Sender',
  delayed: 'Delayed Mail (still being retried)',
  delivered: 'Successful Mail Delivery Report',
  relayed: 'Successful Mail Delivery Report',
};

/** Builds the report as a stream of CRLF-terminated lines, ready for the spool. */
export function buildDsn(input: DsnInput): Readable {
  const kind = reportKind(input.recipients);
  const root = new MimeNode('multipart/report; report-type=delivery-status', { newline: 'win', hostname: input.reportingMta });
  root.setHeader({
    From: `Mail Delivery System <${input.from}>`,
    To: input.to,
    Subject: input.toPostmaster ? `Postmaster Copy: ${SUBJECTS[kind]}` : SUBJECTS[kind],
    Date: new Date(input.now),
    // RFC 3834: no auto-responder should answer this.
    'Auto-Submitted': 'auto-replied',
  });
  if (input.message.messageId) {
    root.setHeader('In-Reply-To', input.message.messageId);
    root.setHeader('References', input.message.messageId);
  }
  root.createChild('text/plain').setContent(humanText(input, kind));
  root.createChild('message/delivery-status').setContent(deliveryStatus(input));
  const returned = root.createChild(input.returnContent === 'full' ? 'message/rfc822' : 'text/rfc822-headers');
  if (input.returnContent === 'full' && input.message.envelope.bodyType !== '7bit') {
    returned.setHeader('Content-Transfer-Encoding', '8bit');
  }
  returned.setContent(input.original);
  return root.createReadStream();
}

/** The action of the report as a whole: failures first, then delays, then a success up to a mailbox. */
function reportKind(recipients: readonly DsnRecipient[]): DsnAction {
  for (const action of ['failed', 'delayed', 'delivered'] as const) {
    if (recipients.some((r) => r.action === action)) return action;
  }
  return 'relayed';
}

function humanText(input: DsnInput, kind: DsnAction): string {
  const intro: Record<DsnAction, string> = {
    failed: 'I\'m sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It\'s attached below.',
    delayed: `Your message could not be delivered yet to one or more recipients.\nThe mail system will keep trying until ${input.willRetryUntil ? rfc5322Date(new Date(input.willRetryUntil)) : 'it gives up'};\nyou do not need to send it again.`,
    delivered: 'Your message was delivered to the recipients listed below, as you asked.',
    relayed:
      'Your message was passed on to the mail systems of the recipients listed below, as you asked.\n' +
      'They do not report delivery, so this is the last notice you will get from here;\n' +
      'you may still hear of a failure from them.',
  };
  const lines = [
    `This is the mail system at host ${input.reportingMta}.`,
    '',
    intro[kind],
    '',
    'For further assistance, please send mail to postmaster.',
    '',
    ...(input.toPostmaster ? [`The original sender was <${input.message.envelope.from}>.`, ''] : []),
    ...input.recipients.map((r) => `<${r.address}>: ${humanOutcome(r)}`),
    '',
  ];
  return lines.join('\n');
}

function humanOutcome(recipient: DsnRecipient): string {
  if (recipient.action === 'delivered') return 'delivered';
  if (recipient.action === 'relayed') return recipient.reply.remoteMta ? `relayed to ${recipient.reply.remoteMta}` : 'relayed';
  return describeReply(recipient.reply);
}

function describeReply(reply: DeliveryReply): string {
  const host = reply.remoteMta ? `host ${reply.remoteMta} said: ` : '';
  return `${host}${[reply.code || undefined, reply.enhanced, reply.text].filter(Boolean).join(' ')}`;
}

/** The message/delivery-status body (RFC 3464 section 2): per-message fields, then one block per recipient. */
function deliveryStatus(input: DsnInput): string {
  const { message } = input;
  const perMessage = [
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Petrel-Queue-ID: ${message.id}`,
    ...(message.envelope.dsn?.envid ? [`Original-Envelope-Id: ${oneLine(message.envelope.dsn.envid)}`] : []),
    `Arrival-Date: ${rfc5322Date(new Date(message.receivedAt))}`,
  ];
  const blocks = input.recipients.map((r) => {
    const fields = [
      ...(r.orcpt ? [`Original-Recipient: ${orcptField(r.orcpt)}`] : []),
      `Final-Recipient: rfc822; ${r.address}`,
      `Action: ${r.action}`,
      `Status: ${statusOf(r)}`,
    ];
    if (r.reply.remoteMta) fields.push(`Remote-MTA: dns; ${r.reply.remoteMta}`);
    const diagnostic = diagnosticCode(r);
    if (diagnostic) fields.push(`Diagnostic-Code: ${diagnostic}`);
    if (r.lastAttemptAt !== undefined) fields.push(`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttemptAt))}`);
    if (r.action === 'delayed' && input.willRetryUntil !== undefined) {
      fields.push(`Will-Retry-Until: ${rfc5322Date(new Date(input.willRetryUntil))}`);
    }
    return fields.join('\r\n');
  });
  return `${[perMessage.join('\r\n'), ...blocks].join('\r\n\r\n')}\r\n`;
}

/** The Status field: the reply's enhanced code, else one derived from the reply class and action. */
function statusOf(recipient: DsnRecipient): string {
  const enhanced = recipient.reply.enhanced;
  if (enhanced && /^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced)) {
    // An expired message is reported as failed with its 4.x.x status (RFC 3464 example: 4.4.7).
    return enhanced;
  }
  if (recipient.action === 'delivered' || recipient.action === 'relayed') return '2.0.0';
  if (recipient.action === 'delayed') return '4.0.0';
  return recipient.reply.code >= 400 && recipient.reply.code < 500 ? '4.0.0' : '5.0.0';
}

/**
 * RFC 3464 2.3.6: `smtp;` only for a reply a server actually gave; what
 * Petrel found out itself (no such domain, no route, expiry, a policy) is
 * `x-petrel;` with its text, and a success of ours needs no diagnostic.
 */
function diagnosticCode(recipient: DsnRecipient): string | undefined {
  const { reply } = recipient;
  if (reply.fromServer && reply.code >= 200 && reply.code < 600) {
    return `smtp; ${oneLine([reply.code, reply.enhanced, reply.text].filter(Boolean).join(' '))}`;
  }
  if (recipient.action === 'delivered' || recipient.action === 'relayed') return undefined;
  return `x-petrel; ${oneLine(reply.text)}`;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').trim();
}

/**
 * ORCPT arrives as `rfc822;addr` (smtp-server has already decoded the xtext
 * of RFC 3461 4.2); the DSN field wants `rfc822; addr`.
 */
function orcptField(orcpt: string): string {
  const at = orcpt.indexOf(';');
  if (at < 0) return `rfc822; ${oneLine(orcpt)}`;
  return `${orcpt.slice(0, at).trim()}; ${oneLine(orcpt.slice(at + 1))}`;
}
