import type { Logger } from '../log/logger.js';
import type { Address, ListenerInfo, Notes, Session, TlsInfo, Transaction } from '../session.js';

/** The mutable state behind the read-only Session that plugins see. */
export class SessionState implements Session {
  helo?: string;
  user?: string;
  transaction?: TransactionState;
  tls: TlsInfo;
  readonly notes: Notes = new Map();
  readonly startedAt = Date.now();
  /** Messages accepted on this connection, for the disconnect log line. */
  accepted = 0;

  constructor(
    readonly id: string,
    readonly listener: ListenerInfo,
    readonly remote: { readonly address: string; readonly port: number; readonly hostname?: string },
    readonly local: { readonly address: string; readonly port: number },
    secure: boolean,
    readonly log: Logger,
  ) {
    this.tls = { secure };
  }
}

export class TransactionState implements Transaction {
  readonly to: Address[] = [];
  readonly notes: Notes = new Map();
  readonly startedAt = Date.now();

  constructor(
    readonly id: string,
    readonly from: Address,
    readonly log: Logger,
  ) {}
}
