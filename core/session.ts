import type { Logger } from './log/logger.js';
import type { IncomingMessage } from './spool/incoming-message.js';

/**
 * The shapes hook handlers see. They are Petrel's own types: smtp-server's
 * session object stays behind core/smtp/ so a plugin never depends on it.
 */

/** A MAIL FROM or RCPT TO address with its ESMTP parameters (keys upper case). */
export interface Address {
  /** The address as given, '' for the null sender `<>`. */
  readonly address: string;
  readonly args: Readonly<Record<string, string | true>>;
  /** RCPT TO only: DSN parameters (RFC 3461). */
  readonly dsn?: { readonly notify?: readonly string[]; readonly orcpt?: string };
}

export type TlsMode = 'none' | 'starttls' | 'implicit';

export interface ListenerInfo {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMode;
  /** MAIL is refused until the client has switched to TLS. */
  readonly requireTls: boolean;
  /** AUTH is offered on this listener. */
  readonly auth: boolean;
  /** Relaying requires AUTH on this listener (a submission port). */
  readonly submission: boolean;
}

export interface TlsInfo {
  readonly secure: boolean;
  readonly servername?: string;
  readonly cipher?: string;
  readonly protocol?: string;
}

/** Free-form per-session or per-transaction state for plugins; namespace your keys. */
export type Notes = Map<string, unknown>;

export interface Session {
  /** Unique id of this connection, on every log line of it. */
  readonly id: string;
  readonly listener: ListenerInfo;
  readonly remote: {
    readonly address: string;
    readonly port: number;
    /** Forward-confirmed reverse DNS name, undefined if none or lookups are off. */
    readonly hostname?: string;
  };
  readonly local: { readonly address: string; readonly port: number };
  readonly tls: TlsInfo;
  /** The name given with HELO/EHLO, once the client has sent one. */
  readonly helo?: string;
  /** The authenticated user, once AUTH succeeded. */
  readonly user?: string;
  /** Set while a mail transaction (MAIL FROM .. end of DATA) is open. */
  readonly transaction?: Transaction;
  readonly log: Logger;
  readonly notes: Notes;
}

export interface Transaction {
  /** The queue id this message will have once accepted. */
  readonly id: string;
  readonly from: Address;
  readonly to: readonly Address[];
  readonly log: Logger;
  readonly notes: Notes;
}

export interface HeloInfo {
  readonly command: 'HELO' | 'EHLO' | 'LHLO';
  readonly hostname: string;
}

export interface Credentials {
  readonly method: 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2';
  readonly username: string;
  /** PLAIN and LOGIN only. */
  readonly password?: string;
  /** CRAM-MD5 only: checks the client's response against a clear-text secret. */
  readonly validatePassword?: (secret: string) => boolean;
}

export type { IncomingMessage };
