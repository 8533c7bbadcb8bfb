import type { HookResult } from './results.js';
import type { Address, Credentials, HeloInfo, IncomingMessage, Session, Transaction } from '../session.js';

/**
 * Every hook Petrel runs, in the order a message meets them, with the typed
 * handler each takes. docs/hooks.md is the prose version of this file.
 *
 * A handler returns (or resolves to) a HookResult. The first decisive result
 * (anything but `next()`) ends the chain; when every handler says `next()`,
 * the hook's default applies (see HOOK_DEFAULTS).
 */
export type HookOutcome = HookResult | Promise<HookResult>;

export interface HookMap {
  /** A client connected. Reject/defer/disconnect refuse the connection with that reply. */
  connect: (session: Session) => HookOutcome;
  /** HELO/EHLO/LHLO. Reject or defer answer the command; the client may try again. */
  helo: (session: Session, helo: HeloInfo) => HookOutcome;
  /** AUTH. `accept()` authenticates the user; default is 535 5.7.8. */
  auth: (session: Session, credentials: Credentials) => HookOutcome;
  /** MAIL FROM. The transaction has its queue id and sender but no recipients yet. */
  mail: (session: Session, transaction: Transaction, from: Address) => HookOutcome;
  /** RCPT TO, once per recipient. Default is to refuse: some plugin must accept. */
  rcpt: (session: Session, transaction: Transaction, recipient: Address) => HookOutcome;
  /** DATA command. A refusal is answered once the client has sent the message. */
  data: (session: Session, transaction: Transaction) => HookOutcome;
  /** The message is on disk and its headers parsed: checks and header edits. */
  message: (session: Session, transaction: Transaction, message: IncomingMessage) => HookOutcome;
  /**
   * The message is about to be made durable. `accept()` means this plugin took
   * it over (it is then responsible for it); when all say `next()` the
   * configured queue stores it. The client gets 250 only after that.
   */
  queue: (session: Session, transaction: Transaction, message: IncomingMessage) => HookOutcome;
  /** The connection closed. Results are ignored. */
  disconnect: (session: Session) => HookOutcome;
}

export type HookName = keyof HookMap;
export type HookHandler<H extends HookName> = HookMap[H];
export type HookArgs<H extends HookName> = Parameters<HookMap[H]>;

export const HOOK_NAMES = ['connect', 'helo', 'auth', 'mail', 'rcpt', 'data', 'message', 'queue', 'disconnect'] as const satisfies readonly HookName[];

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
};
