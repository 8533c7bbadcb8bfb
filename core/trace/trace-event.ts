/**
 * What a trace watcher receives: one event per SMTP line, hook verdict or
 * note of an inbound (`server`) or outbound (`client`) session, as it
 * happens. Events are plain data (they go out as JSON over the admin
 * listener) and never carry credentials or message bodies: command lines are
 * redacted where they are read (command-redaction.ts), and message data is
 * never traced, only its size.
 */

export type TraceSide = 'server' | 'client';

/** Which way a line went, seen from Petrel: `in` was read, `out` was written. */
export type LineDirection = 'in' | 'out';

/** How a handler answered: a HookResult kind, or `error` when it threw or timed out. */
export type VerdictResult = 'next' | 'accept' | 'reject' | 'defer' | 'disconnect' | 'error';

interface EventBase {
  /** Epoch ms. */
  readonly at: number;
  readonly side: TraceSide;
  /** The connection: an inbound session id, or an outbound connection id. */
  readonly conn: string;
  /** Outbound: the queue id of the message the connection is carrying (or was opened for). */
  readonly qid?: string;
}

export interface OpenEvent extends EventBase {
  readonly kind: 'open';
  /** Inbound: the client address; outbound: the server's. */
  readonly remote: string;
  readonly port?: number;
  /** Inbound: the listener name. */
  readonly listener?: string;
  /** Outbound: the server's name (MX, smarthost, LMTP) and the destination. */
  readonly host?: string;
  readonly domain?: string;
}

export interface LineEvent extends EventBase {
  readonly kind: 'line';
  readonly dir: LineDirection;
  /** One line, or the lines of a multi-line reply joined with LF. */
  readonly text: string;
}

export interface VerdictEvent extends EventBase {
  readonly kind: 'verdict';
  readonly hook: string;
  readonly plugin: string;
  readonly result: VerdictResult;
  /** `550 5.7.1 text` for a refusal. */
  readonly reply?: string;
  readonly ms: number;
}

/** Something a plugin noted (`spf=pass`, a score, a limit hit) or the core did (TLS up, message size). */
export interface NoteEvent extends EventBase {
  readonly kind: 'note';
  /** The plugin that noted it; undefined for the core. */
  readonly plugin?: string;
  readonly text: string;
}

export interface CloseEvent extends EventBase {
  readonly kind: 'close';
}

/** Sent to a watcher that fell behind: this many events were dropped for it since the last one it got. */
export interface LostEvent {
  readonly kind: 'lost';
  readonly at: number;
  readonly count: number;
}

export type SessionEvent = OpenEvent | LineEvent | VerdictEvent | NoteEvent | CloseEvent;
export type TraceEvent = SessionEvent | LostEvent;
