import type { Session } from '../session.js';

export interface ReceivedFields {
  readonly session: Session;
  readonly protocol: string;
  readonly byHost: string;
  readonly queueId: string;
  /** Named only when there is exactly one, so a Bcc list is not disclosed. */
  readonly recipients: readonly string[];
  readonly date: Date;
}

/**
 * The Received trace field (RFC 5321 4.4, RFC 3848 protocol names), in the
 * shape Postfix writes and operators read:
 *
 *   Received: from helo.name (client.name [192.0.2.1])
 *   	by mx.example.org (Petrel) with ESMTPS id <queue id>
 *   	(TLSv1.3 TLS_AES_256_GCM_SHA384)
 *   	for <rcpt@example.org>;
 *   	Sat, 28 Nov 2026 18:00:00 +0000
 */
export function receivedHeader(fields: ReceivedFields): string {
  const { session } = fields;
  const client = `${session.remote.hostname ?? 'unknown'} [${session.remote.address}]`;
  const parts = [`from ${session.helo ?? session.remote.address} (${client})`];
  parts.push(`by ${fields.byHost} (Petrel) with ${fields.protocol} id ${fields.queueId}`);
  if (session.tls.secure && session.tls.protocol) {
    parts.push(`(${session.tls.protocol}${session.tls.cipher ? ` ${session.tls.cipher}` : ''})`);
  }
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
