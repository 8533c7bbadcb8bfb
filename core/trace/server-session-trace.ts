import { unmapIPv4 } from '../util/networks.js';
import { redactCommand } from './command-redaction.js';
import type { SessionEvent, VerdictResult } from './trace-event.js';
import type { TraceHub } from './trace-hub.js';
import type { TraceSubject } from './trace-subject.js';

/** The parts of smtp-server's connection a trace reads (live: XCLIENT changes the address). */
interface RawConnection {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * The live trace of one inbound session: the emit points of the SMTP
 * connection (each command read, each reply written) and of the hooks call
 * these methods, always behind a check of `watched`, so an untraced session
 * pays one boolean test per line.
 */
export class ServerSessionTrace implements TraceSubject {
  readonly side = 'server' as const;
  /** The current transaction's sender (lower case), for sender filters. */
  senders: string[] = [];
  /** The current transaction's recipients tried, accepted or not (lower case). */
  recipients: string[] = [];

  constructor(
    private readonly hub: TraceHub,
    private readonly raw: RawConnection,
    readonly listener: string,
  ) {}

  get watched(): boolean {
    return this.hub.serverWatched;
  }

  get conn(): string {
    return this.raw.id;
  }

  get remote(): string {
    return unmapIPv4(this.raw.remoteAddress ?? '');
  }

  /** MAIL FROM: a new transaction, so the envelope filters start again. */
  sender(address: string): void {
    this.senders = [address.toLowerCase()];
    this.recipients = [];
  }

  recipient(address: string): void {
    this.recipients.push(address.toLowerCase());
  }

  opened(): void {
    this.#publish({ kind: 'open', at: Date.now(), side: 'server', conn: this.conn, remote: this.remote, port: this.raw.remotePort, listener: this.listener });
  }

  /** A command line as read (Buffer or string, CRLF or not); `inAuth` for a line inside an AUTH exchange. */
  command(line: Buffer | string, inAuth: boolean): void {
    const text = redactCommand(line.toString().replace(/\r?\n$/, ''), inAuth);
    this.#publish({ kind: 'line', at: Date.now(), side: 'server', conn: this.conn, dir: 'in', text });
  }

  /** A reply as written: its lines without CRLF. */
  reply(lines: readonly string[]): void {
    this.#publish({ kind: 'line', at: Date.now(), side: 'server', conn: this.conn, dir: 'out', text: lines.join('\n') });
  }

  verdict(hook: string, plugin: string, result: VerdictResult, ms: number, reply?: string): void {
    this.#publish({ kind: 'verdict', at: Date.now(), side: 'server', conn: this.conn, hook, plugin, result, ms: Math.round(ms * 10) / 10, ...(reply ? { reply } : {}) });
  }

  note(text: string, plugin?: string): void {
    this.#publish({ kind: 'note', at: Date.now(), side: 'server', conn: this.conn, text, ...(plugin ? { plugin } : {}) });
  }

  closed(): void {
    this.#publish({ kind: 'close', at: Date.now(), side: 'server', conn: this.conn });
  }

  #publish(event: SessionEvent): void {
    this.hub.publish(event, this);
  }
}
