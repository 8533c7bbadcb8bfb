import type { HookResult } from './results.js';
import type { Address, Credentials, HeloInfo, IncomingMessage, Session, Transaction } from '../session.js';
import type {
  BouncedEvent,
  BouncedVerdict,
  DeferredEvent,
  DeferredVerdict,
  DeliveredEvent,
  Delivery,
  DeliveryOutcome,
  OutboundMessage,
  OutgoingContent,
  RouteOutcome,
} from '../delivery/outbound.js';
import type { QueuedRecipient } from '../queue/contract.js';

/**
 * Every hook Petrel runs, in the order a message meets them, with the typed
 * handler each takes. docs/hooks.md is the prose version of this file.
 *
 * A handler returns (or resolves to) a HookResult. The first decisive result
 * (anything but `next()`) ends the chain; when every handler says `next()`,
 * the hook's default applies (see HOOK_DEFAULTS).
 *
 * Every inbound handler gets an AbortSignal as its last argument. It fires
 * when the handler runs past its timeout (the client has got 451 4.3.0 by
 * then and the result will be ignored): pass it on to fetch(), timers,
 * streams and anything else that takes one, or check `signal.aborted`
 * before changing anything, so abandoned work stops. Its `reason` is the
 * timeout error. Handlers that do not need it leave the parameter out.
 */
export type HookOutcome = HookResult | Promise<HookResult>;

export interface InboundHookMap {
  /** A client connected. Reject/defer/disconnect refuse the connection with that reply. */
  connect: (session: Session, signal: AbortSignal) => HookOutcome;
  /** HELO/EHLO/LHLO. Reject or defer answer the command; the client may try again. */
  helo: (session: Session, helo: HeloInfo, signal: AbortSignal) => HookOutcome;
  /** AUTH. `accept()` authenticates the user; default is 535 5.7.8. */
  auth: (session: Session, credentials: Credentials, signal: AbortSignal) => HookOutcome;
  /** MAIL FROM. The transaction has its queue id and sender but no recipients yet. */
  mail: (session: Session, transaction: Transaction, from: Address, signal: AbortSignal) => HookOutcome;
  /** RCPT TO, once per recipient. Default is to refuse: some plugin must accept. */
  rcpt: (session: Session, transaction: Transaction, recipient: Address, signal: AbortSignal) => HookOutcome;
  /** DATA command. A refusal is answered once the client has sent the message. */
  data: (session: Session, transaction: Transaction, signal: AbortSignal) => HookOutcome;
  /** The message is on disk and its headers parsed: checks and header edits. */
  message: (session: Session, transaction: Transaction, message: IncomingMessage, signal: AbortSignal) => HookOutcome;
  /**
   * The message is about to be made durable. `accept()` means this plugin took
   * it over (it is then responsible for it); when all say `next()` the
   * configured queue stores it. The client gets 250 only after that.
   */
  queue: (session: Session, transaction: Transaction, message: IncomingMessage, signal: AbortSignal) => HookOutcome;
  /** The connection closed. Results are ignored. */
  disconnect: (session: Session, signal: AbortSignal) => HookOutcome;
}

/** What the core passes to an inbound hook's handlers, before the AbortSignal the runner adds. */
export type InboundHookArgs<H extends InboundHookName> = Parameters<InboundHookMap[H]> extends [...infer Args, AbortSignal] ? Args : never;

/**
 * The outbound hooks the delivery scheduler runs for each attempt on a
 * queued message (core/delivery/). Their handlers do not return HookResults:
 * each has its own typed answer, defined in core/delivery/outbound.ts.
 */
export interface OutboundHookMap {
  /**
   * Chooses where one recipient goes. Return a Route (`{ target, destination }`)
   * to decide, or undefined for no opinion; the first Route wins. When nobody
   * decides, the recipient goes to the first delivery target, keyed by its domain.
   */
  route: (message: OutboundMessage, recipient: QueuedRecipient) => RouteOutcome;
  /**
   * Changes the message before one delivery (e.g. a DKIM signature); runs per
   * route group and attempt, never stored. A throw defers the group.
   */
  transform: (delivery: Delivery, content: OutgoingContent) => void | Promise<void>;
  /**
   * Sends a group of recipients that share a route, and reports each one:
   * delivered, deferred (4xx, connection failure) or bounced (5xx). Only the
   * plugin named by `route.target` is asked (or the first deliver handler when
   * the route names none). A throw or timeout defers the whole group.
   */
  deliver: (delivery: Delivery) => DeliveryOutcome;
  /** Recipients were delivered. Results are ignored. */
  delivered: (event: DeliveredEvent) => void | Promise<void>;
  /** Recipients were deferred. May return `{ nextAttemptAt }` to choose the retry time. */
  deferred: (event: DeferredEvent) => DeferredVerdict | void | Promise<DeferredVerdict | void>;
  /** Recipients failed for good. May return `{ suppressDsn: true }` to send no bounce. */
  bounced: (event: BouncedEvent) => BouncedVerdict | void | Promise<BouncedVerdict | void>;
}

export interface HookMap extends InboundHookMap, OutboundHookMap {}

export type HookName = keyof HookMap;
export type InboundHookName = keyof InboundHookMap;
export type OutboundHookName = keyof OutboundHookMap;
export type HookHandler<H extends HookName> = HookMap[H];
export type HookArgs<H extends HookName> = Parameters<HookMap[H]>;

/** The inbound (SMTP session) hooks, in the order a message meets them. */
export const HOOK_NAMES = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'data', 'message', 'queue', 'disconnect'] as const satisfies readonly InboundHookName[];

/** The outbound (delivery) hooks, in the order a delivery attempt meets them. */
export const OUTBOUND_HOOK_NAMES = ['route', 'transform', 'deliver', 'delivered', 'deferred', 'bounced'] as const satisfies readonly OutboundHookName[];

export const ALL_HOOK_NAMES = [...HOOK_NAMES, ...OUTBOUND_HOOK_NAMES] as const satisfies readonly HookName[];

/** How long a handler may run before it counts as failed (451 4.3.0). */
export const DEFAULT_HOOK_TIMEOUTS: Record<HookName, number> = {
  connect: 10_000,
  helo: 10_000,
  auth: 10_000,
  mail: 10_000,
  rcpt: 10_000,
  data: 10_000,
  message: 60_000,
  queue: 60_000,
  disconnect: 10_000,
  route: 10_000,
  transform: 60_000,
  // A delivery may stream a large message to a slow server; it must still end
  // well before the queue lease (delivery.leaseTime) runs out.
  deliver: 300_000,
  delivered: 10_000,
  deferred: 10_000,
  bounced: 10_000,
};
