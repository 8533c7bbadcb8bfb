import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';
import type { QueuedMessage, QueuedRecipient } from '../queue/contract.js';
import type { MessageHeaders } from '../spool/message-headers.js';

/**
 * The contract between the delivery scheduler and the plugins that route,
 * transform and deliver mail (relay-mx, relay-smarthost, deliver-lmtp,
 * deliver-maildir, dkim-sign, routing).
 * docs/hooks.md ("Outbound hooks") is the prose version; the hook names and
 * handler signatures are in core/hooks/catalogue.ts.
 *
 * One delivery attempt on a message:
 *
 *   route (per open recipient) → group by target + destination →
 *   per group: transform → deliver → per-recipient results →
 *   delivered / deferred / bounced notifications → queue settle → DSNs
 */

/** A queued message as the outbound hooks see it (read-only). */
export type OutboundMessage = QueuedMessage;

/** Where a recipient goes, chosen by the `route` hook. */
export interface Route {
  /**
   * The delivery target: the `meta.name` of the plugin whose `deliver`
   * handler sends this group (`relay-mx`, `relay-smarthost`, `deliver-lmtp`). Undefined
   * means "the first delivery plugin in config order".
   */
  readonly target?: string;
  /**
   * What recipients are grouped and throttled by: recipients of one message
   * with the same target and destination go out in one `deliver` call, and
   * outbound shaping (`delivery.shaping`) limits deliveries per destination.
   * Usually the recipient domain, or a fixed name for a smarthost.
   */
  readonly destination: string;
  /**
   * The host this group goes to, when the router already knows it (an MX it
   * looked up, a smarthost's name). Outbound shaping (`delivery.shaping`)
   * then counts connections and rates per host instead of per destination,
   * so domains served by one provider share its limits, and its rules may
   * match the host name (`*.google.com`). Recipients are still grouped by
   * `destination`.
   */
  readonly host?: string;
  /** Anything the target needs from the router (a smarthost name, an LMTP socket). */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** What a route handler answers: a Route to decide, undefined for no opinion. */
export type RouteOutcome = Route | undefined | Promise<Route | undefined>;

/**
 * A reply about one recipient, as a remote server gave it (or as the target
 * made it up for a local problem). Goes into the queue record, `queue show`,
 * logs and DSNs (Status, Diagnostic-Code, Remote-MTA).
 */
export interface DeliveryReply {
  /** SMTP/LMTP reply code: 2xx, 4xx or 5xx. */
  readonly code: number;
  /** RFC 3463 enhanced status code, when the server gave one (or a fitting one for local failures). */
  readonly enhanced?: string;
  readonly text: string;
  /** The host that answered, for the DSN's Remote-MTA field. */
  readonly remoteMta?: string;
  /**
   * True when this is a server's own reply (`parseReply` sets it), false or
   * unset for one Petrel or the target made up (no route, DNS, expiry, a
   * policy). A DSN gives a server's reply as `Diagnostic-Code: smtp; ...`
   * and anything else as `x-petrel; ...` (RFC 3464 2.3.6).
   */
  readonly fromServer?: boolean;
}

/**
 * What a delivered recipient's success means for delivery status
 * notifications (RFC 3461 section 5.2):
 *
 * - `final`: the message reached the mailbox (maildir, an LMTP server);
 *   a success report says `Action: delivered`;
 * - `relayed`: handed to a server that does not support DSN, so nobody will
 *   report on it further; a success report says `Action: relayed`;
 * - `passed-on`: handed to a server that supports DSN and got the
 *   recipient's NOTIFY and ORCPT: reporting is its job from now on, and
 *   Petrel sends no success report (the sender would get two).
 *
 * Unset means `final`.
 */
export type Handoff = 'final' | 'relayed' | 'passed-on';

/** The result for one recipient of a `deliver` call. */
export type RecipientResult =
  | { readonly address: string; readonly status: 'delivered'; readonly reply?: DeliveryReply; readonly handoff?: Handoff }
  | { readonly address: string; readonly status: 'deferred'; readonly reply: DeliveryReply }
  | { readonly address: string; readonly status: 'bounced'; readonly reply: DeliveryReply };

/**
 * What a deliver handler answers: one result per recipient of the group.
 * A recipient left out counts as deferred (451 4.3.0), so a target bug
 * never loses mail.
 */
export type DeliveryOutcome = readonly RecipientResult[] | Promise<readonly RecipientResult[]>;

/**
 * The limits outbound shaping (`delivery.shaping`) puts on a delivery's
 * destination, for targets that keep connections open between deliveries.
 * The scheduler already runs at most `maxConnections` deliveries at once to
 * the destination; a pool that opens one connection per running delivery
 * stays within it by itself.
 */
export interface DeliveryLimits {
  /**
   * Deliveries the scheduler runs at once to this destination right now: the
   * configured maximum, lower while the destination backs off. A pool should
   * not keep more connections to it open, idle ones included.
   */
  readonly maxConnections?: number;
  /** Close a reused connection after this many messages (RSET between them); unset: the target decides. */
  readonly messagesPerConnection?: number;
}

/** How a target wants the message from `Delivery.open`. */
export interface OpenOptions {
  /**
   * Converted to 7-bit MIME for a next hop that does not offer 8BITMIME
   * (RFC 6152): every 8-bit part quoted-printable (text) or base64 (the
   * rest), the transforms run again on the converted copy so a DKIM
   * signature covers what is sent. Rejects with a DeliveryFailure
   * (`554 5.6.3`) when the message cannot be converted (8-bit bytes in a
   * header field). An 8-bit message that is ASCII after all is left as it is.
   */
  readonly sevenBit?: boolean;
}

/**
 * One group of recipients of one message that share a route: what the
 * `transform` and `deliver` handlers get.
 */
export interface Delivery {
  readonly message: OutboundMessage;
  readonly route: Route;
  /** The recipients to deliver now (pending or deferred, never finished ones). */
  readonly recipients: readonly QueuedRecipient[];
  /** Which attempt this is for the message, from 1. */
  readonly attempt: number;
  /**
   * The message as it goes out, after every transform of this delivery:
   * header block then body, CRLF line ends, dot-stuffing not applied. Call it
   * once per send; each call opens a fresh stream. With `{ sevenBit: true }`,
   * the same converted to 7-bit (see OpenOptions).
   */
  open(options?: OpenOptions): Promise<Readable>;
  /** Aborted when the server shuts down past its deadline or the handler times out: stop sending. */
  readonly signal: AbortSignal;
  /** Carries qid, target and destination. */
  readonly log: Logger;
  /** The destination's shaping limits (set by the scheduler; optional so hand-made Deliveries in tests need none). */
  readonly limits?: DeliveryLimits;
}

/**
 * The outgoing message as a `transform` handler may change it: edit the
 * header fields (a DKIM-Signature is prepended), read the whole message as it
 * currently is with `stream()`.
 */
export interface OutgoingContent {
  readonly headers: MessageHeaders;
  /** Current header block (with the edits so far) followed by the body. */
  stream(): Promise<Readable>;
}

/** A finished or deferred recipient with the reply that decided it. */
export interface RecipientReport {
  readonly address: string;
  readonly reply: DeliveryReply;
  readonly route?: Route;
}

export interface DeliveredEvent {
  readonly message: OutboundMessage;
  readonly recipients: readonly RecipientReport[];
}

export interface DeferredEvent {
  readonly message: OutboundMessage;
  readonly recipients: readonly RecipientReport[];
  /** When the scheduler will try again (from the retry schedule). */
  readonly nextAttemptAt: number;
}

/** A deferred handler may move the next attempt (e.g. a server asked to wait longer). */
export interface DeferredVerdict {
  readonly nextAttemptAt?: number;
}

export interface BouncedEvent {
  readonly message: OutboundMessage;
  readonly recipients: readonly RecipientReport[];
  /** 'rejected': a permanent reply; 'expired': still deferred at delivery.expireAfter; 'operator': `petrel queue bounce`. */
  readonly reason: 'rejected' | 'expired' | 'operator';
}

/** A bounced handler may suppress the DSN (the recipients still count as bounced). */
export interface BouncedVerdict {
  readonly suppressDsn?: boolean;
}

/** Results made easy for delivery targets. */
export const results = {
  /** Delivered; `handoff` says whether it reached the mailbox or another MTA (see Handoff; default `final`). */
  delivered(address: string, reply?: DeliveryReply, handoff?: Handoff): RecipientResult {
    return { address, status: 'delivered', ...(reply === undefined ? {} : { reply }), ...(handoff === undefined ? {} : { handoff }) };
  },
  deferred(address: string, reply: DeliveryReply): RecipientResult {
    return { address, status: 'deferred', reply };
  },
  bounced(address: string, reply: DeliveryReply): RecipientResult {
    return { address, status: 'bounced', reply };
  },
  /**
   * The result a server's reply means: delivered for 2xx, bounced for 5xx,
   * deferred for anything else (a reply without a usable code is deferred
   * as 451, so a garbled answer never bounces mail).
   */
  fromReply(address: string, reply: DeliveryReply): RecipientResult {
    if (reply.code >= 200 && reply.code < 300) return { address, status: 'delivered', reply };
    if (reply.code >= 500 && reply.code < 600) return { address, status: 'bounced', reply };
    return { address, status: 'deferred', reply: reply.code >= 400 && reply.code < 500 ? reply : { ...reply, code: 451 } };
  },
};

const REPLY_LINE = /^([245]\d\d)[ -]?(?:([245]\.\d{1,3}\.\d{1,3})\s+)?(.*)$/s;

/**
 * Characters of a server's reply text kept (the queue's lastReply, DSNs,
 * history): RFC 5321 lines are at most 512 octets and honest multi-line
 * replies a few of them, while nodemailer takes up to 1 MB from a server.
 */
export const MAX_REPLY_TEXT = 2000;

/**
 * Parses a server's reply text (`550 5.1.1 No such user`, possibly several
 * lines `550-...`) into a DeliveryReply marked `fromServer`. Multi-line
 * replies are joined with a space, each line's code prefix removed.
 */
export function parseReply(response: string, remoteMta?: string): DeliveryReply {
  const lines = response.split(/\r?\n/).filter((line) => line.trim() !== '');
  const first = REPLY_LINE.exec(lines[0] ?? '');
  if (!first) return { code: 0, text: cut(response.trim()), ...(remoteMta ? { remoteMta } : {}) };
  const text = cut(
    lines
      .map((line) => line.replace(/^[245]\d\d[ -]?/, '').replace(/^[245]\.\d{1,3}\.\d{1,3}\s+/, ''))
      .join(' ')
      .trim(),
  );
  return {
    code: Number(first[1]),
    ...(first[2] ? { enhanced: first[2] } : {}),
    text,
    ...(remoteMta ? { remoteMta } : {}),
    fromServer: true,
  };
}

function cut(text: string): string {
  return text.length > MAX_REPLY_TEXT ? `${text.slice(0, MAX_REPLY_TEXT)}…` : text;
}

/** `550 5.1.1 No such user`: how a reply is stored in the queue and shown to operators. */
export function formatReply(reply: DeliveryReply): string {
  return [reply.code, reply.enhanced, reply.text].filter((part) => part !== undefined && part !== '').join(' ');
}
