import type { SMTPServerSession } from 'smtp-server';
import type { Logger } from '../log/logger.js';
import type { SessionPipeline } from './session-pipeline.js';
import type { Address, ListenerInfo, Notes, Session, TlsInfo, Transaction } from '../session.js';

/** The mutable state behind the read-only Session that plugins see. */
export class SessionState implements Session {
  helo?: string;
  transaction?: TransactionState;
  tls: TlsInfo;
  readonly notes: Notes = new Map();
  readonly startedAt = Date.now();
  /** Messages accepted on this connection, for the disconnect log line. */
  accepted = 0;

  /** The peer the connection came from when it opened (XCLIENT may change `remote` later). */
  readonly connectedFrom: string;

  constructor(
    private readonly raw: SMTPServerSession,
    readonly listener: ListenerInfo,
    /** The config and hooks this session runs on, fixed for its lifetime. */
    readonly pipeline: SessionPipeline,
    readonly log: Logger,
  ) {
    this.tls = { secure: raw.secure };
    this.connectedFrom = raw.remoteAddress;
  }

  get id(): string {
    return this.raw.id;
  }

  /** Read live from smtp-server's session, which PROXY and XCLIENT update. */
  get remote(): { readonly address: string; readonly port: number; readonly hostname?: string } {
    const name = this.raw.clientHostname;
    const hostname = name && !name.startsWith('[') ? name : undefined;
    return { address: this.raw.remoteAddress, port: this.raw.remotePort, hostname };
  }

  /**
   * Read live from smtp-server's session, which sets it after AUTH or XCLIENT LOGIN and
   * clears it when the identity must go (STARTTLS, XCLIENT ADDR, an empty XCLIENT LOGIN).
   */
  get user(): string | undefined {
    const user: unknown = this.raw.user;
    return typeof user === 'string' && user !== '' ? user : undefined;
  }

  get local(): { readonly address: string; readonly port: number } {
    return { address: this.raw.localAddress, port: this.raw.localPort };
  }
}

export class TransactionState implements Transaction {
  readonly to: Address[] = [];
  /** Mutable for envelope edits (core/smtp/envelope-edits.ts); plugins see it read-only. */
  from: Address;
  readonly notes: Notes = new Map();
  readonly startedAt = Date.now();

  constructor(
    readonly id: string,
    from: Address,
    readonly log: Logger,
  ) {
    this.from = from;
  }
}
