import { stateOf, type QueuedMessage, type QueueFilter } from './contract.js';
import { compareListOrder, isAfter, listCursor, matchesFilter } from './queue-filter.js';

/** What a queue keeps in memory of each message that listing order, state and age need. */
export interface ListedEntry {
  readonly id: string;
  readonly receivedAt: number;
  readonly held: boolean;
  readonly attempts: number;
}

/**
 * `Queue.list()` for a queue that keeps a small entry per message in memory
 * and the full record elsewhere (a file, a journal segment). In listing order
 * (arrival, then id). A page (`limit`, `after`) is chosen from the entries and
 * only its records are read: a `--limit 100` page of a million costs one pass
 * over memory and 100 reads. Filters on sender and domain need the records,
 * so they are read in rounds of candidates until the page is full. `load`
 * answers undefined for a message that left the queue meanwhile; `entries`
 * is asked again for each round (a Map's values() can be walked only once).
 */
export async function listEntries<E extends ListedEntry>(
  entries: () => Iterable<E>,
  filter: QueueFilter,
  now: number,
  load: (entry: E) => Promise<QueuedMessage | undefined>,
): Promise<QueuedMessage[]> {
  // The cursor is applied to entries; the records are matched on the rest.
  const rest: QueueFilter = { ...filter, after: undefined };
  if (filter.limit === undefined) {
    // Everything: as costly as the queue is big (operators page with limit and after).
    const all = [...entries()].filter((entry) => entryMatches(entry, filter, now)).sort(compareListOrder);
    return matchingRecords(all, rest, now, Number.POSITIVE_INFINITY, load);
  }
  const page: QueuedMessage[] = [];
  const needsRecords = filter.sender !== undefined || filter.domain !== undefined;
  let after = filter.after;
  while (page.length < filter.limit) {
    const round = Math.min(filter.limit - page.length, 1_000) * (needsRecords ? 4 : 1);
    const candidates = firstEntries(entries(), { ...filter, after }, round, now);
    page.push(...(await matchingRecords(candidates, rest, now, filter.limit - page.length, load)));
    if (candidates.length < round) break;
    after = listCursor(candidates[candidates.length - 1]);
  }
  return page;
}

/** The records of `entries` that match, at most `limit`, in the entries' order. */
async function matchingRecords<E extends ListedEntry>(
  entries: readonly E[],
  filter: QueueFilter,
  now: number,
  limit: number,
  load: (entry: E) => Promise<QueuedMessage | undefined>,
): Promise<QueuedMessage[]> {
  const matches: QueuedMessage[] = [];
  for (const entry of entries) {
    if (matches.length >= limit) break;
    const message = await load(entry);
    if (message && matchesFilter(message, filter, now)) matches.push(message);
  }
  return matches;
}

/** What an entry can tell of the filter: cursor, state, age. */
function entryMatches(entry: ListedEntry, filter: QueueFilter, now: number): boolean {
  if (filter.after !== undefined && !isAfter(entry, filter.after)) return false;
  if (filter.state !== undefined && stateOf(entry) !== filter.state) return false;
  return filter.olderThanMs === undefined || now - entry.receivedAt >= filter.olderThanMs;
}

/** Up to `count` entries after the filter's cursor that its state and age allow, in listing order, without sorting them all. */
function firstEntries<E extends ListedEntry>(entries: Iterable<E>, filter: QueueFilter, count: number, now: number): E[] {
  const chosen: E[] = [];
  for (const entry of entries) {
    if (!entryMatches(entry, filter, now)) continue;
    // Entries come mostly in arrival order, so the usual case appends or drops at once; in any
    // order, only about count × ln(entries / count) of them ever get into the page.
    if (chosen.length === count && compareListOrder(entry, chosen[count - 1]) >= 0) continue;
    let index = chosen.length;
    while (index > 0 && compareListOrder(entry, chosen[index - 1]) < 0) index--;
    chosen.splice(index, 0, entry);
    if (chosen.length > count) chosen.pop();
  }
  return chosen;
}
