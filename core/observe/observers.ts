import type { Delivery } from '../delivery/outbound.js';
import type { HookResult } from '../hooks/results.js';
import type { Session, Transaction } from '../session.js';

/**
 * Who listens to a session or a delivery attempt: its live trace and its
 * history. The core attaches one to each inbound session (and its
 * transactions) and to each Delivery it hands to a target; plugins reach it
 * only through `noteFinding`.
 */
export interface Observer {
  /** A plugin's note (see noteFinding). */
  finding(plugin: string, text: string): void;
  /** How one handler answered and how long it took (`undefined`: it threw or timed out). */
  verdict?(hook: string, plugin: string, result: HookResult | undefined, ms: number): void;
}

const observers = new WeakMap<object, Observer>();

export function attachObserver(subject: object, observer: Observer): void {
  observers.set(subject, observer);
}

export function observerOf(subject: unknown): Observer | undefined {
  return typeof subject === 'object' && subject !== null ? observers.get(subject) : undefined;
}

/** Longest note kept; longer ones are cut. */
const MAX_NOTE = 300;

/**
 * Tells the message's history and anyone tracing the session what a check
 * found: an SPF or DMARC result, a scanner's score, a rate limit that was hit,
 * the TLS policy of a delivery. It shows in `petrel queue show`, `petrel why`,
 * `petrel trace` and the console, beside the plugin's verdicts.
 *
 *   noteFinding(transaction, 'mailauth', 'spf=pass (sender SPF authorized)');
 *   noteFinding(delivery, 'relay-mx', 'MTA-STS policy enforce: mx1.example.org allowed');
 *
 * A session, its transaction or a Delivery; anything else (a hand-made object
 * in a unit test) is ignored. Never throws.
 */
export function noteFinding(subject: Session | Transaction | Delivery, plugin: string, text: string): void {
  const observer = observerOf(subject);
  if (!observer) return;
  const clean = String(text).replace(/[\r\n\0]+/g, ' ').trim();
  observer.finding(String(plugin), clean.length > MAX_NOTE ? `${clean.slice(0, MAX_NOTE)}…` : clean);
}
