import { stateOf, type QueuedMessage, type QueueFilter } from './contract.js';

/** Whether a message passes an operator's filter (`petrel queue list --state ... --domain ...`); shared by every queue. */
export function matchesFilter(message: QueuedMessage, filter: QueueFilter, now: number): boolean {
  if (filter.state !== undefined && stateOf(message) !== filter.state) return false;
  if (filter.sender !== undefined && message.envelope.from.toLowerCase() !== filter.sender.toLowerCase()) return false;
  if (filter.olderThanMs !== undefined && now - message.receivedAt < filter.olderThanMs) return false;
  if (filter.domain !== undefined) {
    const domain = filter.domain.toLowerCase();
    if (!message.recipients.some((r) => r.address.toLowerCase().endsWith(`@${domain}`))) return false;
  }
  if (filter.after !== undefined && !isAfter(message, filter.after)) return false;
  return true;
}

/**
 * Where a page of `list()` ends: the next page starts after it
 * (`{ after: listCursor(lastMessage) }`). Listings are in arrival order, ties by id.
 */
export function listCursor(message: Pick<QueuedMessage, 'receivedAt' | 'id'>): string {
  return `${message.receivedAt}.${message.id}`;
}

/** The arrival time and id a cursor names; throws on anything listCursor could not have made. */
export function parseListCursor(cursor: string): { receivedAt: number; id: string } {
  const match = /^(\d{1,16})\.(.+)$/.exec(cursor);
  if (!match) throw new Error(`"${cursor}" is not a queue listing cursor (they look like 1733000000000.mi5k2w3c0-9f3b1c0d2a7e4f10)`);
  return { receivedAt: Number(match[1]), id: match[2] };
}

/** Listing order: arrival, then id. */
export function compareListOrder(a: Pick<QueuedMessage, 'receivedAt' | 'id'>, b: Pick<QueuedMessage, 'receivedAt' | 'id'>): number {
  return a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The last cursor parsed: a listing asks about the same one for every message. */
let lastParsed: { cursor: string; position: { receivedAt: number; id: string } } | undefined;

/** Whether a message comes after the cursor in listing order. */
export function isAfter(message: Pick<QueuedMessage, 'receivedAt' | 'id'>, cursor: string): boolean {
  if (lastParsed?.cursor !== cursor) lastParsed = { cursor, position: parseListCursor(cursor) };
  return compareListOrder(message, lastParsed.position) > 0;
}
