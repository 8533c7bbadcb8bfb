/**
 * `petrel/queue`: what a queue plugin (`meta.provides: ['queue']`, like
 * queue-spool and queue-redis) builds on besides the Queue contract, which
 * `petrel` exports with the other services: applying delivery outcomes to
 * recipients, the operator's list filter, the bytes of a spooled message, an
 * open file that is appended to and synced, a heap for due times, and the
 * health of the disk it writes to (what /ready reports), and the recent
 * bodies a queue keeps for a first delivery.
 */
export type * from './contract.js';
export { stateOf } from './contract.js';
export { applyOutcomes, countByState } from './apply-outcomes.js';
export { compareListOrder, isAfter, listCursor, matchesFilter, parseListCursor } from './queue-filter.js';
export { listEntries, type ListedEntry } from './queue-page.js';
export { countMessages, DomainLists, openDomains, QueueCounter } from './queue-counts.js';
export { bodyStream, IN_MEMORY_COPY_LIMIT, messageStream } from '../spool/incoming-message.js';
export type { SpooledFile } from '../spool/incoming-message.js';
export { OpenFile } from '../util/open-file.js';
export { MinHeap } from '../util/min-heap.js';
export { RecentBodies } from './recent-bodies.js';
export { WriteHealth } from '../util/write-health.js';
