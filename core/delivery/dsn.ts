import type { Readable } from 'node:stream';
import MimeNode from 'nodemailer/lib/mime-node';
import type { QueuedMessage } from '../queue/contract.js';
import type { DeliveryReply } from './outbound.js';

/**
 * Delivery status notifications (RFC 3464): a multipart/report with a
 * human-readable part, a message/delivery-status part (one block per
 * recipient) and the original message or its headers. The MIME is built by
 * nodemailer's MimeNode; this file only decides what goes in.
 */

export type DsnAction = 'failed' | 'delayed' | 'delivered';

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

/** The action of the report as a whole: failures first, then delays. */
function reportKind(recipients: readonly DsnRecipient[]): DsnAction {
  if (recipients.some((r) => r.action === 'failed')) return 'failed';
  if (recipients.some((r) => r.action === 'delayed')) return 'delayed';
  return 'delivered';
}

function humanText(input: DsnInput, kind: DsnAction): string {
  const intro: Record<DsnAction, string> = {
    failed: 'I\'m sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It\'s attached below.',
    delayed: `Your message could not be delivered yet to one or more recipients.\nThe mail system will keep trying until ${input.willRetryUntil ? new Date(input.willRetryUntil).toUTCString() : 'it gives up'};\nyou do not need to send it again.`,
    delivered: 'Your message was delivered to the recipients listed below, as you asked.',
  };
  const lines = [
    `This is the mail system at host ${input.reportingMta}.`,
    '',
    intro[kind],
    '',
    'For further assistance, please send mail to postmaster.',
    '',
    ...(input.toPostmaster ? [`The original sender was <${input.message.envelope.from}>.`, ''] : []),
    ...input.recipients.map((r) => `<${r.address}>: ${r.action === 'delivered' ? 'delivered' : describeReply(r.reply)}`),
    '',
  ];
  return lines.join('\n');
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
    `Arrival-Date: ${new Date(message.receivedAt).toUTCString()}`,
  ];
  const blocks = input.recipients.map((r) => {
    const fields = [
      ...(r.orcpt ? [`Original-Recipient: ${orcptField(r.orcpt)}`] : []),
      `Final-Recipient: rfc822; ${r.address}`,
      `Action: ${r.action}`,
      `Status: ${statusOf(r)}`,
    ];
    if (r.reply.remoteMta) fields.push(`Remote-MTA: dns; ${r.reply.remoteMta}`);
    if (r.reply.code >= 200 && r.reply.code < 600) fields.push(`Diagnostic-Code: smtp; ${describeDiagnostic(r.reply)}`);
    else if (r.action !== 'delivered') fields.push(`Diagnostic-Code: x-petrel; ${oneLine(r.reply.text)}`);
    if (r.lastAttemptAt !== undefined) fields.push(`Last-Attempt-Date: ${new Date(r.lastAttemptAt).toUTCString()}`);
    if (r.action === 'delayed' && input.willRetryUntil !== undefined) {
      fields.push(`Will-Retry-Until: ${new Date(input.willRetryUntil).toUTCString()}`);
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
  if (recipient.action === 'delivered') return '2.0.0';
  if (recipient.action === 'delayed') return '4.0.0';
  return recipient.reply.code >= 400 && recipient.reply.code < 500 ? '4.0.0' : '5.0.0';
}

function describeDiagnostic(reply: DeliveryReply): string {
  return oneLine([reply.code, reply.enhanced, reply.text].filter(Boolean).join(' '));
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
