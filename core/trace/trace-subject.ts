import type { TraceSide } from './trace-event.js';

/**
 * The facts about one traced connection that filters look at. They change
 * while the connection goes on (XCLIENT changes the client address, each
 * MAIL FROM names a sender, an outbound connection carries one message after
 * another), so watchers read them when an event arrives, not when the
 * connection opened.
 */
export interface TraceSubject {
  readonly side: TraceSide;
  readonly conn: string;
  /** Inbound: the client address; outbound: the server's. */
  readonly remote: string;
  /** Inbound: the listener. */
  readonly listener?: string;
  /** Outbound: the server's name (MX, smarthost). */
  readonly host?: string;
  /** Outbound: the destination domain of the message now being sent. */
  readonly domain?: string;
  /** Outbound: the queue id of the message now being sent. */
  readonly qid?: string;
  /** Inbound: every MAIL FROM address of the session so far (lower case). */
  readonly senders: readonly string[];
  /** Inbound: every RCPT TO address tried so far, accepted or not (lower case). */
  readonly recipients: readonly string[];
}
