import type { X509Certificate } from 'node:crypto';
import mxConnect, { type MxConnectError, type MxConnection, type MxConnectLogEntry } from 'mx-connect';
import type { DeliveryReply, DnsResolver, Logger } from 'petrel';
import { connectFailure, type SmtpClientError, SmtpSession } from 'petrel/delivery';
import type { Exchange } from './exchanges.js';
import type { MxVerdict } from './mta-sts.js';
import { ExchangeDns } from './mx-dns.js';
import { allowsPlaintext, connectionTlsOptions, tlsRequirement, type TlsRequirement, type TlsSettings } from './tls-policy.js';

/** Why one exchanger could not take the message; the MX walk moves on to the next. */
export class ExchangeFailure extends Error {
  constructor(
    readonly exchange: string,
    readonly kind: 'dns' | 'policy' | 'network' | 'greeting' | 'tls' | 'requiretls',
    readonly reply: DeliveryReply,
  ) {
    super(`${exchange}: ${reply.text}`);
    this.name = 'ExchangeFailure';
  }

  /** Would fail the same way next time (no address, a blocked address, no REQUIRETLS). */
  get permanent(): boolean {
    return this.reply.code >= 500;
  }
}

export interface ConnectorSettings {
  readonly port: number;
  /** MX names reached on another port than `port` (labs and tests). */
  readonly exchangePorts: Readonly<Record<string, number>>;
  readonly heloName: string;
  readonly localAddress?: string;
  readonly blockLocalAddresses: boolean;
  readonly ipv6: 'on' | 'prefer' | 'off';
  readonly dane: boolean;
  readonly tls: TlsSettings & { readonly plaintextFallback: boolean };
  readonly timeouts: { readonly connect: number; readonly greeting: number; readonly socket: number };
}

/** What a connection is for: the domain, whether the message demands REQUIRETLS, what MTA-STS says of each MX. */
export interface ConnectRequest {
  readonly domain: string;
  readonly requireTls: boolean;
  readonly signal: AbortSignal;
  /** The delivery's logger (qid, target, destination). */
  readonly log: Logger;
  /** The domain's MTA-STS verdict on an MX (mta-sts.ts). */
  judge(exchange: string): MxVerdict;
  /** Tells the delivery's history and trace what was decided (the TLS policy, a fallback to plaintext). */
  note(text: string): void;
}

/**
 * Opens an SMTP session with one mail exchanger of a domain. mx-connect
 * does the part it is good at — the exchanger's addresses through our
 * resolver, refusing local and private ones, DANE's TLSA lookup, the TCP
 * connection tried address by address — and
 * nodemailer's SMTPConnection does greeting, EHLO and STARTTLS on that
 * socket, with the TLS the connection needs (tls-policy.ts). The MX list
 * itself is walked by relay-mx, one exchanger at a time, so that a 4xx
 * greeting or a failed TLS handshake also moves on to the next one.
 */
export class ExchangeConnector {
  constructor(
    private readonly settings: ConnectorSettings,
    private readonly dns: DnsResolver,
    private readonly log: Logger,
  ) {}

  /** A session ready for MAIL FROM, or an ExchangeFailure saying why not. */
  async connect(request: ConnectRequest, exchange: Exchange): Promise<SmtpSession> {
    const verdict = request.judge(exchange.name);
    if (!verdict.allowed) {
      throw new ExchangeFailure(exchange.name, 'policy', {
        code: 451,
        enhanced: '4.7.5',
        text: `MX ${exchange.name} is not allowed by the MTA-STS policy of ${request.domain} (mode enforce); not sending`,
      });
    }
    if (request.requireTls && !exchange.implicit && !exchange.dnssec && !verdict.listed) {
      // RFC 8689 4.2.1: a REQUIRETLS message goes only to an MX whose name an attacker on the
      // path could not have put there: MX records that are DNSSEC-validated, or an MX listed by
      // the domain's MTA-STS policy. Anything else could be a spoofed MX with a valid certificate.
      throw new ExchangeFailure(exchange.name, 'requiretls', {
        code: 550,
        enhanced: '5.7.30',
        text: `REQUIRETLS: MX ${exchange.name} of ${request.domain} is neither DNSSEC-validated nor listed by an MTA-STS policy`,
      });
    }
    const tcp = await this.#tcp(request, exchange);
    const requirement = tlsRequirement(tcp, { mtaStsEnforced: verdict.enforced, requireTls: request.requireTls }, this.settings.tls);
    let session: SmtpSession;
    try {
      session = await this.#handshake(tcp, requirement, request.signal);
    } catch (error) {
      const failure = error as SmtpClientError;
      if (failure.code !== 'ETLS' || !allowsPlaintext(requirement) || !this.settings.tls.plaintextFallback) {
        throw new ExchangeFailure(exchange.name, failure.code === 'ETLS' ? 'tls' : 'greeting', connectFailure(failure, exchange.name));
      }
      // Opportunistic TLS that fails is no reason to keep mail back: the same host again, in plaintext.
      request.log.warn({ mx: exchange.name, ip: tcp.host, err: failure.message.trim() }, 'TLS handshake failed; sending in plaintext (opportunistic TLS)');
      request.note(`${exchange.name}: TLS handshake failed (${failure.message.trim()}); sending in plaintext (opportunistic TLS)`);
      const again = await this.#tcp(request, exchange, tcp.host);
      try {
        session = await this.#handshake(again, 'plaintext', request.signal);
      } catch (retryError) {
        throw new ExchangeFailure(exchange.name, 'greeting', connectFailure(retryError as SmtpClientError, exchange.name));
      }
    }
    try {
      if (requirement.level === 'dane') this.#checkDane(session, tcp, exchange.name);
      if (request.requireTls && !session.supports('REQUIRETLS')) {
        throw new ExchangeFailure(exchange.name, 'requiretls', {
          code: 550,
          enhanced: '5.7.30',
          text: `REQUIRETLS support required: ${exchange.name} does not offer REQUIRETLS`,
          remoteMta: exchange.name,
        });
      }
    } catch (error) {
      session.close();
      throw error;
    }
    const tls = session.tlsSocket;
    request.note(`${exchange.name} [${tcp.host}]: TLS policy ${requirement.level}${'reason' in requirement ? ` (${requirement.reason})` : ''}`);
    request.log.info(
      {
        mx: exchange.name,
        ip: tcp.host,
        port: tcp.port,
        tls: tls ? `${tls.getProtocol()} ${tls.getCipher().name}${tls.authorized ? ' verified' : ''}` : 'none',
        tlsPolicy: requirement.level,
      },
      `connected to ${exchange.name}`,
    );
    return session;
  }

  /** mx-connect for one exchanger (optionally one address of it); its errors become ExchangeFailures. */
  async #tcp(request: ConnectRequest, exchange: Exchange, onlyAddress?: string): Promise<MxConnection> {
    const { settings } = this;
    const port = settings.exchangePorts[exchange.name] ?? settings.port;
    const entry = onlyAddress
      ? { exchange: exchange.name, priority: exchange.priority, ...(onlyAddress.includes(':') ? { AAAA: [onlyAddress] } : { A: [onlyAddress] }) }
      : { exchange: exchange.name, priority: exchange.priority };
    const lookups = new ExchangeDns(this.dns, exchange, settings.dane, request.log);
    try {
      return await mxConnect({
        target: request.domain,
        mx: [entry],
        port,
        maxConnectTime: settings.timeouts.connect,
        ...(settings.localAddress ? { localAddress: settings.localAddress } : {}),
        localHostname: settings.heloName,
        dnsOptions: {
          resolveRecords: lookups.resolveRecords,
          blockLocalAddresses: settings.blockLocalAddresses,
          ignoreIPv6: settings.ipv6 === 'off',
          preferIPv6: settings.ipv6 === 'prefer',
        },
        // MTA-STS is judged before connecting (mta-sts.ts), not by mx-connect's own step.
        mtaSts: { enabled: false },
        dane: {
          enabled: settings.dane,
          resolveTlsa: lookups.resolveTlsa,
          checkDnssecSecure: lookups.checkDnssecSecure,
          logger: (entry) => this.#logDane(entry),
        },
      });
    } catch (error) {
      throw this.#tcpFailure(error as MxConnectError, exchange.name);
    }
  }

  #tcpFailure(error: MxConnectError, exchange: string): ExchangeFailure {
    const remoteMta = exchange;
    switch (error.category) {
      case 'dane':
        return new ExchangeFailure(exchange, 'tls', { code: 451, enhanced: '4.7.5', text: `DANE TLSA lookup for ${exchange} failed: ${error.message}` });
      case 'dns':
        return error.temporary
          ? new ExchangeFailure(exchange, 'dns', { code: 451, enhanced: '4.4.3', text: `DNS lookup for ${exchange} failed: ${error.message}` })
          : new ExchangeFailure(exchange, 'dns', { code: 550, enhanced: '5.4.4', text: `cannot deliver to ${exchange}: ${error.message}` });
      default:
        return new ExchangeFailure(exchange, 'network', { code: 451, enhanced: '4.4.1', text: `connect to ${exchange} failed: ${error.message}`, remoteMta });
    }
  }

  #handshake(tcp: MxConnection, requirement: TlsRequirement | 'plaintext', signal: AbortSignal): Promise<SmtpSession> {
    const { timeouts, heloName, tls } = this.settings;
    return SmtpSession.open(
      {
        connection: tcp.socket,
        host: tcp.host,
        port: tcp.port,
        name: heloName,
        greetingTimeout: timeouts.greeting,
        socketTimeout: timeouts.socket,
        ...connectionTlsOptions(requirement, tcp.hostname, tls),
      },
      tcp.hostname,
      signal,
    );
  }

  /** RFC 7672: with TLSA records the certificate must match one of them, checked with the whole chain the server sent. */
  #checkDane(session: SmtpSession, tcp: MxConnection, exchange: string): void {
    const socket = session.tlsSocket;
    const leaf = socket?.getPeerX509Certificate();
    // The issuers only, leaf excluded; a self-signed certificate is its own issuer.
    const chain: X509Certificate[] = [];
    const seen = new Set(leaf ? [leaf.fingerprint256] : []);
    for (let cert = leaf?.issuerCertificate; cert && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
      seen.add(cert.fingerprint256);
      chain.push(cert);
    }
    const problem = leaf && tcp.daneVerifier ? tcp.daneVerifier(exchange, leaf, chain) : new Error('no certificate to check');
    if (problem) throw new ExchangeFailure(exchange, 'tls', { code: 451, enhanced: '4.7.5', text: `DANE: ${problem.message}`, remoteMta: exchange });
  }

  #logDane(entry: MxConnectLogEntry): void {
    const fields = { action: entry.action, mx: entry.hostname, ip: entry.host, domain: entry.domain, error: entry.error };
    if (entry.success) this.log.debug(fields, entry.msg);
    else this.log.warn(fields, entry.msg);
  }
}
