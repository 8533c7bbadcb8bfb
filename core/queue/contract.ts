import type { Readable } from 'node:stream';
import type { SpooledFile } from '../spool/incoming-message.js';

/**
 * The queue contract. A queue is a plugin that implements `Queue` and
 * declares `meta.provides: ['queue']`; the core finds it under TOKENS.Queue.
 * queue-journal (a journal on local disk, the default), queue-spool (a file
 * per message) and queue-redis implement it, and one contract test suite
 * (test/queue-contract.ts) runs against all three.
 *
 * Durability: `enqueue` resolves only once the message survives a crash of
 * the process (and, for queue-journal and queue-spool, of the machine). Only then does the
 * client get 250. Delivery is at least once: a message goes out again only if
 * a crash fell between sending it and `settle`.
 *
 * Failures: a call that rejects changed nothing (a full disk, a Redis that is
 * away). In particular a `settle` or `abandon` that rejects leaves the lease
 * as it was, so the caller may simply call it again; a rejected `enqueue`
 * leaves nothing behind that could be delivered or listed later.
 */

export type RecipientStatus = 'pending' | 'deferred' | 'delivered' | 'bounced';

export interface QueuedRecipient {
  readonly address: string;
  /** RFC 3461 NOTIFY values (upper case), when the client gave them. */
  readonly notify?: readonly string[];
  /** RFC 3461 ORCPT, as given. */
  readonly orcpt?: string;
  readonly status: RecipientStatus;
  readonly attempts: number;
  /** The last reply about this recipient (remote server's, or ours), kept for DSNs and `queue show`. */
  readonly lastReply?: string;
  /** When the status last changed, epoch ms. */
  readonly updatedAt?: number;
}

export interface QueuedEnvelope {
  /** '' for the null sender (bounces). */
  readonly from: string;
  /** RFC 3461 RET and ENVID. */
  readonly dsn?: { readonly ret?: 'FULL' | 'HDRS'; readonly envid?: string };
  readonly smtpUtf8: boolean;
  readonly bodyType: '7bit' | '8bitmime' | 'binarymime';
  readonly requireTls: boolean;
}

/** Where the message came from, for Received-style logs, DSNs and policy. */
export interface MessageOrigin {
  readonly remoteAddress: string;
  readonly helo?: string;
  readonly user?: string;
  readonly listener: string;
  /**
   * Set on messages Petrel made itself: 'dsn' for a delivery status
   * notification to a sender, 'postmaster' for a double bounce sent to the
   * postmaster. A failed 'postmaster' notice is dropped, never bounced again.
   */
  readonly generated?: 'dsn' | 'postmaster';
}

export interface QueuedMessage {
  readonly id: string;
  readonly envelope: QueuedEnvelope;
  readonly recipients: readonly QueuedRecipient[];
  readonly origin: MessageOrigin;
  readonly size: number;
  /** Epoch ms the message was accepted. */
  readonly receivedAt: number;
  /** Epoch ms of the next delivery attempt. */
  readonly nextAttemptAt: number;
  /** Delivery attempts so far (each lease that settled). */
  readonly attempts: number;
  /** Held messages are never leased until released. */
  readonly held: boolean;
  /** Message-ID header, if the message has one (for logs and `queue list`). */
  readonly messageId?: string;
}

/** What the SMTP side hands to the queue once a message is accepted. */
export interface NewMessage {
  readonly id: string;
  readonly envelope: QueuedEnvelope;
  readonly recipients: readonly { readonly address: string; readonly notify?: readonly string[]; readonly orcpt?: string }[];
  readonly origin: MessageOrigin;
  readonly receivedAt: number;
  /** The header block as it leaves the message hook (edits applied), with its empty line. */
  readonly headerBlock: Buffer;
  /** The received bytes on disk; the body starts at `file.bodyOffset`. */
  readonly file: SpooledFile;
  readonly messageId?: string;
}

/** A message handed to one delivery worker until `deadline`. */
export interface Lease {
  readonly message: QueuedMessage;
  /** Opaque proof of ownership: settle/release with a stale token do nothing. */
  readonly token: string;
  /** Epoch ms after which the message may be leased by someone else. */
  readonly deadline: number;
}

/** What happened to one recipient in a delivery attempt. */
export type RecipientOutcome =
  | { readonly address: string; readonly status: 'delivered'; readonly reply?: string }
  | { readonly address: string; readonly status: 'deferred'; readonly reply: string }
  | { readonly address: string; readonly status: 'bounced'; readonly reply: string };

export interface SettleRequest {
  readonly outcomes: readonly RecipientOutcome[];
  /** When deferred recipients are due again; required if any outcome is deferred. */
  readonly nextAttemptAt?: number;
}

export type QueueState = 'active' | 'deferred' | 'held';

export interface QueueFilter {
  readonly state?: QueueState;
  /** Matches any recipient's domain. */
  readonly domain?: string;
  readonly sender?: string;
  /** Only messages received at least this many ms ago. */
  readonly olderThanMs?: number;
  readonly limit?: number;
  /**
   * Only messages after this cursor in the listing's order (arrival, then
   * id): `listCursor(last)` of the previous page's last message. With
   * `limit`, operators page through a queue of any size without anyone
   * holding all of it.
   */
  readonly after?: string;
}

/**
 * What `/metrics`, `/ready` and `petrel queue stats` show, kept as counters
 * by a queue that offers `counts()` so that they cost the same for ten
 * messages and for a million.
 */
export interface QueueCounts {
  /** Messages by state (as `stats()`). */
  readonly states: Record<QueueState, number>;
  /** By destination domain: open (pending or deferred) recipients, and messages with at least one. */
  readonly destinations: Readonly<Record<string, { readonly messages: number; readonly recipients: number }>>;
}

export interface Queue {
  /** Stores a new message durably; resolves only once it survives a crash. */
  enqueue(message: NewMessage): Promise<void>;

  /**
   * Leases up to `limit` messages that are due (nextAttemptAt <= now), not
   * held and not leased, oldest due first, for `leaseMs`. A lease that runs
   * out (its holder crashed) makes the message due again.
   */
  lease(limit: number, leaseMs: number): Promise<Lease[]>;

  /** The message as it goes out: header block, then body. */
  read(id: string): Promise<Readable>;

  /**
   * Records what happened to each recipient and ends the lease. A message
   * whose recipients are all delivered or bounced leaves the queue.
   * Resolves false (and changes nothing) if the lease was lost; rejects (and
   * changes nothing: the lease is still held) if the queue could not write.
   */
  settle(lease: Lease, request: SettleRequest): Promise<boolean>;

  /**
   * Ends a lease without recording anything and without counting an attempt:
   * the message is due again at `dueAt` (epoch ms), at once when it is not
   * given (shutdown, a failed attempt). The scheduler postpones messages whose
   * destination has no room this way. The due time need not survive a crash
   * (after one, the message may simply be due at once).
   */
  abandon(lease: Lease, dueAt?: number): Promise<void>;

  /**
   * Leases one message by id whether or not it is due or held, unless someone
   * else holds a live lease on it. Operators use it (`queue bounce`) to act
   * on a message through the same settle path as a delivery.
   */
  claim(id: string, leaseMs: number): Promise<Lease | undefined>;

  /** Calls `listener` whenever a message becomes due sooner than before (a new message, a retry). */
  onDue(listener: () => void): () => void;

  /**
   * When the earliest message (not held) is due, epoch ms, or undefined if
   * the queue has nothing to deliver. A live lease counts as due at its
   * deadline. The scheduler sleeps until then.
   */
  nextDueAt(): Promise<number | undefined>;

  // Operators (CLI and admin API)
  list(filter?: QueueFilter): Promise<QueuedMessage[]>;
  inspect(id: string): Promise<QueuedMessage | undefined>;
  /** Makes a message due now. */
  retry(id: string): Promise<boolean>;
  /** Keeps a message from being leased until it is released. */
  hold(id: string): Promise<boolean>;
  release(id: string): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  /** Counts by state. */
  stats(): Promise<Record<QueueState, number>>;

  /**
   * The counts by state and destination, from counters the queue keeps up to
   * date on every change (and rebuilds when it recovers), in constant time
   * whatever the queue holds. Optional: without it the core counts a full
   * `list()` for `/metrics` and `petrel queue stats`, which costs time and
   * memory in proportion to the queue (fine for small queues, slow for big ones).
   * The counts must equal what counting `list()` gives once the queue is quiet.
   */
  counts?(): Promise<QueueCounts>;

  /**
   * Behind `/ready`: resolves while the queue can store mail, rejects with the
   * reason while it cannot (its disk full or failing after a write error).
   * Optional: without it `/ready` asks `stats()`.
   */
  ready?(): Promise<void>;
}

/** The state a queued message is in, for lists and filters. */
export function stateOf(message: Pick<QueuedMessage, 'held' | 'attempts'>): QueueState {
  if (message.held) return 'held';
  return message.attempts > 0 ? 'deferred' : 'active';
}
