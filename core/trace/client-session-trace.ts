import { randomBytes } from 'node:crypto';
import { format } from 'node:util';
import { redactCommand } from './command-redaction.js';
import type { SessionEvent } from './trace-event.js';
import type { TraceHub } from './trace-hub.js';
import type { TraceSubject } from './trace-subject.js';

type LogCall = (entry: { tnx?: string } | undefined, message?: string, ...args: unknown[]) => void;

/** The bunyan-style logger nodemailer's SMTPConnection calls. */
export interface NodemailerLogger {
  trace: LogCall;
  debug: LogCall;
  info: LogCall;
  warn: LogCall;
  error: LogCall;
  fatal: LogCall;
}

const REPLY_CODE = /^(\d{3})[ -]/;

/**
 * The live trace of one outbound SMTP or LMTP connection, fed by nodemailer's
 * own logger hooks: with `transactionLog` on, SMTPConnection hands every
 * command it writes (`tnx: client`) and every reply it reads (`tnx: server`)
 * to its logger, never the message data. `transactionLog` is read at each
 * line, so it is made to follow `hub.clientWatched`: nodemailer builds no
 * line while nobody watches. Its other log calls (connected, STARTTLS,
 * closed) become notes. AUTH lines are redacted again here (nodemailer hides
 * passwords, not the user of AUTH LOGIN).
 */
export class ClientSessionTrace implements TraceSubject {
  readonly side = 'client' as const;
  readonly conn = `c${randomBytes(6).toString('hex')}`;
  readonly senders: readonly string[] = [];
  readonly recipients: readonly string[] = [];
  /** The message being sent now (or the one the connection was opened for). */
  qid: string | undefined;
  domain: string | undefined;
  #inAuth = false;

  readonly logger: NodemailerLogger = {
    trace: () => undefined,
    debug: (entry, message, ...args) => this.#debug(entry, message, args),
    info: (entry, message, ...args) => this.#note(entry, message, args),
    warn: (entry, message, ...args) => this.#note(entry, message, args),
    error: (entry, message, ...args) => this.#note(entry, message, args),
    fatal: (entry, message, ...args) => this.#note(entry, message, args),
  };

  constructor(
    private readonly hub: TraceHub,
    /** The server's address as dialled. */
    readonly remote: string,
    readonly port: number | undefined,
    /** The server's name (MX, smarthost, LMTP). */
    readonly host: string,
    opening: { qid?: string; domain?: string },
  ) {
    this.qid = opening.qid;
    this.domain = opening.domain;
  }

  get watched(): boolean {
    return this.hub.clientWatched;
  }

  /** Makes nodemailer's `transactionLog` option follow whether anyone watches. */
  followWatchers(options: object): void {
    Object.defineProperty(options, 'transactionLog', { get: () => this.hub.clientWatched, configurable: true });
  }

  opened(): void {
    if (!this.watched) return;
    this.#publish({ kind: 'open', at: Date.now(), side: 'client', conn: this.conn, ...this.#message(), remote: this.remote, ...(this.port ? { port: this.port } : {}), host: this.host, ...(this.domain ? { domain: this.domain } : {}) });
  }

  closed(): void {
    if (this.watched) this.#publish({ kind: 'close', at: Date.now(), side: 'client', conn: this.conn, ...this.#message() });
  }

  #debug(entry: { tnx?: string } | undefined, message: string | undefined, args: unknown[]): void {
    if (!this.watched) return;
    const tnx = entry?.tnx;
    if (tnx !== 'client' && tnx !== 'server') return this.#note(entry, message, args);
    const line = String(message ?? '');
    if (tnx === 'server') {
      const code = REPLY_CODE.exec(line)?.[1];
      if (code !== undefined && code !== '334') this.#inAuth = false;
      this.#publish({ kind: 'line', at: Date.now(), side: 'client', conn: this.conn, ...this.#message(), dir: 'in', text: line });
      return;
    }
    const text = redactCommand(line, this.#inAuth);
    if (/^\s*AUTH\s/i.test(line)) this.#inAuth = true;
    this.#publish({ kind: 'line', at: Date.now(), side: 'client', conn: this.conn, ...this.#message(), dir: 'out', text });
  }

  #note(entry: { tnx?: string } | undefined, message: string | undefined, args: unknown[]): void {
    if (!this.watched || message === undefined) return;
    if (entry?.tnx === 'message' && args.length === 0) return;
    this.#publish({ kind: 'note', at: Date.now(), side: 'client', conn: this.conn, ...this.#message(), text: format(message, ...args) });
  }

  #message(): { qid?: string } {
    return this.qid ? { qid: this.qid } : {};
  }

  #publish(event: SessionEvent): void {
    this.hub.publish(event, this);
  }
}
