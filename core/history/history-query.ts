import { isQueueId } from '../queue/queue-id.js';
import type { HistoryRecord } from './history-record.js';

/**
 * What `petrel why` looks for: a queue id, a Message-ID (with or without its
 * angle brackets), or an address that sent or was sent to. Addresses and
 * Message-IDs compare without case.
 */
export interface HistoryQuery {
  /** Lower case, without angle brackets. */
  readonly needle: string;
  readonly queueId: boolean;
}

export function parseHistoryQuery(text: string): HistoryQuery {
  const needle = text.trim().replace(/^<(.*)>$/, '$1').toLowerCase();
  return { needle, queueId: isQueueId(needle) };
}

/** When the message with this queue id was created (queue ids start with a base-36 ms timestamp). */
export function queueIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 9), 36);
}

/** Whether a record names the queried message, sender or recipient. */
export function recordMatches(record: HistoryRecord, query: HistoryQuery): boolean {
  const { needle } = query;
  if (record.id === needle) return true;
  if (record.t !== 'received' && record.t !== 'refused') return false;
  if (record.msgid !== undefined && record.msgid.replace(/^<(.*)>$/, '$1').toLowerCase() === needle) return true;
  if (record.from.toLowerCase() === needle) return true;
  if (record.to.some((to) => to.toLowerCase() === needle)) return true;
  return (record.refused ?? []).some((refusal) => refusal.rcpt.toLowerCase() === needle);
}

/** The record's queue id, read from the start of its JSON line without parsing it (records put `id` first). */
export function idOfLine(line: string): string | undefined {
  return line.startsWith('{"id":"') ? line.slice(7, line.indexOf('"', 7)) : undefined;
}
