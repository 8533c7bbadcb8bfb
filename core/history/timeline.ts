import type { CheckEntry, ConnectionFacts, HistoryRecord, RecipientFacts, SessionFacts } from './history-record.js';
import type { MessageHistory } from './history-store.js';

const INDENT = ' '.repeat(26);

/** `2026-12-05 00:01:02.123` (UTC): the time column of a timeline. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 23);
}

/**
 * A message's history as lines of text, oldest first: how it came in (the
 * session, each plugin's decisions and notes), each delivery attempt (the
 * server, its address and TLS, what the target noted, each recipient's
 * reply), what the queue recorded after it, and operators' actions. What
 * `petrel queue show` and `petrel why` print.
 */
export function timelineLines(records: readonly HistoryRecord[]): string[] {
  const lines: string[] = [];
  for (const record of records) {
    const at = timestamp(record.at);
    switch (record.t) {
      case 'received':
        lines.push(`${at}  received   ${record.size} bytes from <${record.from}> to ${record.to.map((to) => `<${to}>`).join(', ')}${record.generated ? ` [${record.generated}]` : ''}`);
        if (record.session) lines.push(`${INDENT} ${sessionText(record.session)}`);
        lines.push(...checkLines(record.checks));
        for (const refusal of record.refused ?? []) lines.push(`${INDENT} refused <${refusal.rcpt}>: ${refusal.reply}${refusal.plugin ? ` (${refusal.plugin})` : ''}`);
        lines.push(`${INDENT} ${record.reply}`);
        break;
      case 'refused':
        lines.push(`${at}  REFUSED    at ${record.stage.toUpperCase()}: ${record.reply}${record.plugin ? ` (${record.plugin})` : ''}`);
        lines.push(`${INDENT} from <${record.from}>${record.to.length > 0 ? ` to ${record.to.map((to) => `<${to}>`).join(', ')}` : ''}`);
        lines.push(`${INDENT} ${sessionText(record.session)}`);
        lines.push(...checkLines(record.checks));
        for (const refusal of record.refused ?? []) lines.push(`${INDENT} refused <${refusal.rcpt}>: ${refusal.reply}${refusal.plugin ? ` (${refusal.plugin})` : ''}`);
        break;
      case 'attempt':
        lines.push(`${at}  attempt ${record.attempt}  ${record.target} → ${record.destination} (${record.ms} ms)`);
        for (const connection of record.connections) lines.push(`${INDENT} ${connectionText(connection)}`);
        for (const note of record.notes) lines.push(`${INDENT} ${note.plugin ? `${note.plugin}: ` : ''}${note.note}`);
        lines.push(...recipientLines(record.results));
        break;
      case 'settled':
        lines.push(`${at}  ${settledText(record.results, record.done, record.nextAttemptAt, record.expired)}`);
        if (record.dsn) lines.push(`${INDENT} delivery status notification to the sender queued as ${record.dsn}`);
        break;
      case 'operator':
        lines.push(`${at}  operator   ${record.op}`);
        break;
    }
    if (record.truncated) lines.push(`${INDENT} (this record was shortened: it had very long values or lists)`);
  }
  return lines;
}

/** One message of `petrel why`: a heading, then its timeline. */
export function messageHistoryText(message: MessageHistory): string {
  const first = message.records.find((r) => r.t === 'received' || r.t === 'refused');
  const heading =
    first && (first.t === 'received' || first.t === 'refused')
      ? `${message.id}  ${first.t === 'refused' ? 'refused' : 'accepted'}  <${first.from}>${first.msgid ? `  Message-ID ${first.msgid}` : ''}`
      : message.id;
  return [heading, ...timelineLines(message.records).map((line) => `  ${line}`)].join('\n');
}

function sessionText(session: SessionFacts): string {
  const parts = [`client ${session.client}${session.hostname ? ` (${session.hostname})` : ''}`];
  if (session.helo) parts.push(`helo ${session.helo}`);
  parts.push(`listener ${session.listener}`);
  parts.push(session.tls ? session.tls : 'no TLS');
  if (session.user) parts.push(`user ${session.user}`);
  parts.push(`session ${session.sid}`);
  return parts.join(', ');
}

function checkLines(checks: readonly CheckEntry[]): string[] {
  return checks.map((check) =>
    'note' in check
      ? `${INDENT} ${check.plugin}: ${check.note}`
      : `${INDENT} ${check.hook.padEnd(8)} ${check.plugin.padEnd(16)} ${check.result.padEnd(10)} ${check.ms} ms${check.reply ? `  ${check.reply}` : ''}`,
  );
}

function connectionText(connection: ConnectionFacts): string {
  // A host given as an address (a smarthost, a test sink) is not repeated.
  const address = connection.ip && !connection.host.includes(connection.ip) ? ` [${connection.ip}]${connection.port ? `:${connection.port}` : ''}` : '';
  return `${connection.reused ? 'reused connection to' : 'connected to'} ${connection.host}${address}, TLS ${connection.tls}`;
}

function recipientLines(results: readonly RecipientFacts[]): string[] {
  return results.map((result) => `${INDENT} <${result.address}> ${result.status}${result.reply ? `: ${result.reply}` : ''}`);
}

function settledText(results: readonly RecipientFacts[], done: boolean, nextAttemptAt: number | undefined, expired: boolean | undefined): string {
  const counts = (['delivered', 'deferred', 'bounced'] as const)
    .map((status) => [status, results.filter((r) => r.status === status).length] as const)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status}`);
  const next = nextAttemptAt !== undefined && !done ? `; next attempt ${timestamp(nextAttemptAt)}` : '';
  return `settled    ${counts.join(', ') || 'nothing'}${expired ? ' (expired)' : ''}${done ? '; done, the message left the queue' : next}`;
}
