// mx-connect 2.x ships no type declarations; this covers the part Petrel uses
// (plugins/relay-mx). Names and shapes follow node_modules/mx-connect/README.md.
declare module 'mx-connect' {
  import type { Socket } from 'node:net';
  import type { X509Certificate } from 'node:crypto';

  /** A TLSA record as mx-connect matches it (RFC 6698 fields). */
  export interface TlsaRecord {
    usage: number;
    selector: number;
    mtype: number;
    cert: Buffer;
    ttl?: number;
  }

  export interface MxEntry {
    exchange: string;
    priority?: number;
    A?: string[];
    AAAA?: string[];
    tlsaRecords?: TlsaRecord[];
  }

  /** One structured log entry of the DANE step. */
  export interface MxConnectLogEntry {
    msg: string;
    action: 'mta-sts' | 'dane';
    success: boolean;
    hostname?: string;
    host?: string;
    domain?: string;
    error?: string;
    [key: string]: unknown;
  }

  export interface MxConnectOptions {
    target: string;
    port?: number;
    maxConnectTime?: number;
    localAddress?: string;
    localHostname?: string;
    mx?: (string | MxEntry)[];
    ignoreMXHosts?: string[];
    dnsOptions?: {
      ignoreIPv6?: boolean;
      preferIPv6?: boolean;
      blockLocalAddresses?: boolean;
      blockReservedNetworks?: boolean;
      nat64Prefixes?: string[];
      resolveRecords?: (domain: string, type: string) => unknown[] | Promise<unknown[]>;
    };
    /** mx-connect's own MTA-STS step (relay-mx leaves it off: see plugins/relay-mx/mta-sts.ts). */
    mtaSts?: { enabled?: boolean };
    dane?: {
      enabled?: boolean;
      resolveTlsa?: (name: string) => Promise<TlsaRecord[]>;
      checkDnssecSecure?: (hostname: string) => Promise<{ secure: boolean }>;
      logger?: (entry: MxConnectLogEntry) => void;
    };
  }

  /** The connected exchange. */
  export interface MxConnection {
    socket: Socket;
    hostname: string;
    host: string;
    port: number;
    localAddress?: string;
    localHostname?: string | false;
    localPort?: number;
    daneEnabled?: boolean;
    daneVerifier?: (hostname: string, cert: unknown, chain?: X509Certificate[]) => Error | undefined;
    tlsaRecords?: TlsaRecord[] | null;
    /** Set when TLSA records exist: TLS must be used. */
    requireTls?: boolean;
  }

  /** Errors carry these besides `message`. */
  export interface MxConnectError extends Error {
    code?: string;
    response?: string;
    category?: 'dns' | 'network' | 'policy' | 'dane';
    temporary?: boolean;
  }

  function mxConnect(options: MxConnectOptions | string): Promise<MxConnection>;
  export default mxConnect;
}
