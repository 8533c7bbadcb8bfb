import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import SMTPConnection, { type SMTPConnectionAuth, type SMTPConnectionOptions, type SMTPConnectionSendInfo, type SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import { currentAttempt, type AttemptObserver } from '../../observe/attempt-observer.js';
import { observerOf } from '../../observe/observers.js';
import type { QueuedRecipient } from '../../queue/contract.js';
import { ClientSessionTrace } from '../../trace/client-session-trace.js';
import { fitToNextHop } from '../downgrade/next-hop.js';
import { parseReply, results, type Delivery, type DeliveryReply, type Handoff, type RecipientResult } from '../outbound.js';
import { transactionFailure, type SmtpClientError } from './client-errors.js';
import { DeliveryFailure } from './delivery-failure.js';

/** How long a server may take to answer QUIT before the socket is closed anyway. */
const QUIT_WAIT_MS = 5_000;

/**
 * One open SMTP or LMTP connection to one server, as delivery targets use
 * it: opened (greeting, EHLO/LHLO, STARTTLS, AUTH) once, then any number of
 * transactions, each turning the server's replies into one RecipientResult
 * per recipient. Built on nodemailer's SMTPConnection, which also
 * dot-stuffs the message and turns any bare CR or LF into CRLF on the way
 * out. The connection pool (connection-pool.ts) keeps sessions between
 * deliveries; `reset()` is how it checks one is still good.
 *
 * Opened inside a delivery attempt (the scheduler's deliver call), it is
 * traced live for `petrel trace client` and tells the attempt's history
 * which server it talked to, over which TLS.
 */
export class SmtpSession {
  #alive = true;
  #transactions = 0;

  private constructor(
    private readonly connection: SMTPConnection,
    /** How the server is named in replies, logs and DSNs (Remote-MTA). */
    readonly remoteMta: string,
    /** LMTP is final delivery: REQUIRETLS (RFC 8689) governs relaying and is not passed on. */
    private readonly lmtp: boolean,
    private readonly trace: ClientSessionTrace | undefined,
  ) {
    const dead = () => {
      this.#alive = false;
    };
    connection.on('end', dead);
    connection.on('error', dead);
    if (trace) connection.once('end', () => trace.closed());
  }

  /**
   * Connects and runs the handshake. Rejects with nodemailer's error
   * (`code`, and `response` when the server said no): see connectFailure().
   */
  static async open(options: SMTPConnectionOptions, remoteMta: string, signal?: AbortSignal): Promise<SmtpSession> {
    const trace = traceFor(options, remoteMta, currentAttempt());
    const connection = new SMTPConnection({ logger: trace ? (trace.logger as unknown as SMTPConnectionOptions['logger']) : false, ...options });
    if (trace) {
      trace.followWatchers(connection.options);
      trace.opened();
    }
    // Errors after the handshake arrive as events too; without a listener they would crash the process.
    connection.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const abort = () => {
        connection.close();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('delivery aborted'));
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      connection.once('error', (error: SmtpClientError & { originalCode?: string }) => {
        signal?.removeEventListener('abort', abort);
        // A failed TLS handshake reaches nodemailer as a socket error; callers need to know it was TLS.
        if (connection.upgrading || /^ERR_(SSL|TLS)_/.test(error.originalCode ?? '')) error.code = 'ETLS';
        reject(error);
      });
      connection.connect(() => {
        signal?.removeEventListener('abort', abort);
        resolve();
      });
    });
    return new SmtpSession(connection, remoteMta, options.lmtp === true, trace);
  }

  /** Logs in (smarthosts); rejects with an EAUTH error carrying the server's reply. */
  async login(auth: SMTPConnectionAuth): Promise<void> {
    await new Promise<void>((resolve, reject) => this.connection.login(auth, (error) => (error ? reject(error) : resolve())));
  }

  /** True while the connection is open and may take another transaction. */
  get usable(): boolean {
    return this.#alive && !this.connection.destroyed;
  }

  /** Transactions started on this connection (for messages-per-connection limits). */
  get transactions(): number {
    return this.#transactions;
  }

  /** The TLS socket once STARTTLS (or implicit TLS) is up. */
  get tlsSocket(): TLSSocket | undefined {
    const socket = this.connection._socket as TLSSocket | false | null;
    return this.connection.secure && socket && 'getPeerCertificate' in socket ? socket : undefined;
  }

  /** What the server advertised with EHLO/LHLO that nodemailer tracks (SIZE, DSN, SMTPUTF8, 8BITMIME, REQUIRETLS, PIPELINING). */
  supports(extension: string): boolean {
    // nodemailer keeps the list on a field its declarations leave out; it is stable across 6.x–10.x.
    const extensions = (this.connection as unknown as { _supportedExtensions?: string[] })._supportedExtensions ?? [];
    return extensions.includes(extension.toUpperCase());
  }

  /**
   * Sends the message of `delivery` to `recipients` and answers for each:
   * RCPT refusals per recipient, the final reply for the rest (per
   * recipient with LMTP). To a server that offers DSN, recipients whose
   * NOTIFY or ORCPT differ go in separate transactions on this connection
   * (see transactionsFor). Never throws: a failure becomes the results it means.
   */
  async send(delivery: Delivery, recipients: readonly QueuedRecipient[] = delivery.recipients): Promise<RecipientResult[]> {
    this.#observedBy(delivery);
    const answers: RecipientResult[] = [];
    for (const group of transactionsFor(recipients, this.supports('DSN'))) {
      if (this.#transactions > 0 && !(await this.reset())) {
        const lost: DeliveryReply = { code: 451, enhanced: '4.4.2', text: `connection to ${this.remoteMta} lost between transactions`, remoteMta: this.remoteMta };
        answers.push(...group.map((r) => results.deferred(r.address, lost)));
        continue;
      }
      answers.push(...(await this.#transaction(delivery, group)));
    }
    return answers;
  }

  /** RSET: true when the server is still there and ready for the next transaction. */
  async reset(): Promise<boolean> {
    if (!this.usable) return false;
    return new Promise<boolean>((resolve) => this.connection.reset((error) => resolve(!error)));
  }

  /** QUIT when the connection is healthy (closed anyway if the server does not answer it soon), else just close it. */
  close(): void {
    if (this.usable) {
      this.connection.quit();
      const hangup = setTimeout(() => this.connection.close(), QUIT_WAIT_MS);
      hangup.unref();
      this.connection.once('end', () => clearTimeout(hangup));
    } else {
      this.connection.close();
    }
    this.#alive = false;
  }

  /** Tells the delivery's attempt (its history) about this connection, and points the trace at the message. */
  #observedBy(delivery: Delivery): void {
    if (this.trace) {
      this.trace.qid = delivery.message.id;
      this.trace.domain = delivery.route.destination;
    }
    const attempt = observerOf(delivery) as AttemptObserver | undefined;
    if (!attempt?.connected) return;
    const tls = this.tlsSocket;
    const cipher = tls?.getCipher();
    const socket = this.connection._socket as { remoteAddress?: string; remotePort?: number } | false;
    attempt.connected({
      host: this.remoteMta,
      ...(socket && socket.remoteAddress ? { ip: socket.remoteAddress, port: socket.remotePort } : {}),
      tls: tls
        ? `${tls.getProtocol() ?? 'TLS'} ${cipher?.name ?? ''}`.trim() + (tls.authorized ? ' (verified)' : ' (not verified)')
        : this.supports('STARTTLS')
          ? 'none'
          : 'none (STARTTLS not offered)',
      reused: this.#transactions > 0,
    });
  }

  /**
   * Who reports on a recipient this server took (RFC 3461 5.2): an LMTP
   * server is the mailbox itself (RFC 2033: final delivery, nothing it would
   * report on later); an SMTP server that offers DSN got NOTIFY and ORCPT and
   * reports from now on; one without DSN is a relay that will not.
   */
  #handoff(): Handoff {
    if (this.lmtp) return 'final';
    return this.supports('DSN') ? 'passed-on' : 'relayed';
  }

  async #transaction(delivery: Delivery, group: readonly QueuedRecipient[]): Promise<RecipientResult[]> {
    const addresses = group.map((r) => r.address);
    let sevenBit: boolean;
    let stream: Readable;
    // Nothing is sent before the message is open: whatever goes wrong here, the session stays good for the next transaction.
    try {
      const fit = await fitToNextHop(delivery, group, (extension) => this.supports(extension), this.remoteMta);
      if ('refusal' in fit) return addresses.map((address) => results.fromReply(address, fit.refusal));
      sevenBit = fit.open.sevenBit === true;
      stream = await delivery.open(fit.open);
    } catch (error) {
      if (error instanceof DeliveryFailure) return addresses.map((address) => results.fromReply(address, { ...error.reply, remoteMta: this.remoteMta }));
      const reply: DeliveryReply = { code: 451, enhanced: '4.3.0', text: `local error reading the message: ${(error as Error).message}` };
      return addresses.map((address) => results.deferred(address, reply));
    }
    const envelope = envelopeOf(delivery, group, { relaying: !this.lmtp, eightBit: !sevenBit && delivery.message.envelope.bodyType !== '7bit' });
    this.#transactions++;
    const abort = () => this.connection.close();
    delivery.signal.addEventListener('abort', abort, { once: true });
    try {
      const info = await new Promise<SMTPConnectionSendInfo>((resolve, reject) => {
        this.connection.send(envelope, stream, (error, sent) => {
          if (error) {
            stream.destroy();
            reject(error);
          } else resolve(sent as SMTPConnectionSendInfo);
        });
      });
      const refused = refusals(info.rejectedErrors ?? [], this.remoteMta);
      const final = parseReply(info.response, this.remoteMta);
      // With LMTP the final reply is the last recipient's; one that was refused must not stand for the others.
      const accepted = final.code >= 200 && final.code < 300 ? final : { code: 250, text: `accepted by ${this.remoteMta}`, remoteMta: this.remoteMta };
      const handoff = this.#handoff();
      return addresses.map((address) => refused.get(address) ?? results.delivered(address, accepted, handoff));
    } catch (error) {
      const failure = error as SmtpClientError;
      const refused = refusals(failure.rejectedErrors ?? [], this.remoteMta);
      const reply = transactionFailure(failure, this.remoteMta);
      return addresses.map((address) => refused.get(address) ?? results.fromReply(address, reply));
    } finally {
      delivery.signal.removeEventListener('abort', abort);
    }
  }
}

/** The live trace of a connection opened within a delivery attempt (none outside one, e.g. in a unit test). */
function traceFor(options: SMTPConnectionOptions, remoteMta: string, attempt: AttemptObserver | undefined): ClientSessionTrace | undefined {
  if (!attempt?.hub) return undefined;
  const remote = options.host ?? (options.connection as { remoteAddress?: string } | undefined)?.remoteAddress ?? remoteMta;
  return new ClientSessionTrace(attempt.hub, remote, options.port === undefined ? undefined : Number(options.port), remoteMta, { qid: attempt.qid, domain: attempt.destination });
}

/** MAIL FROM and RCPT TO parameters for one transaction (its recipients share NOTIFY and ORCPT: transactionsFor). */
function envelopeOf(delivery: Delivery, group: readonly QueuedRecipient[], options: { relaying: boolean; eightBit: boolean }): SMTPEnvelope {
  const { envelope, size } = delivery.message;
  const [first] = group;
  const dsn = {
    ret: envelope.dsn?.ret,
    envid: envelope.dsn?.envid,
    notify: first.notify && first.notify.length > 0 ? [...first.notify] : undefined,
    orcpt: first.orcpt,
  };
  const hasDsn = Object.values(dsn).some((value) => value !== undefined);
  return {
    from: envelope.from === '' ? false : envelope.from,
    to: group.map((r) => r.address),
    size,
    use8BitMime: options.eightBit,
    requireTLSExtensionEnabled: options.relaying && envelope.requireTls,
    ...(hasDsn ? { dsn } : {}),
  };
}

/**
 * The transactions for `recipients`. RFC 3461 4.1-4.2: NOTIFY and ORCPT
 * belong to each recipient and must reach a next hop that offers DSN, but
 * nodemailer's SMTPConnection sends one set for every RCPT of a
 * transaction (its `envelope.dsn`). So, to such a server, recipients whose
 * NOTIFY or ORCPT differ go in transactions of their own, one after the
 * other on this connection (docs/architecture.md, Decisions). A server
 * without DSN gets none of them: one transaction for all.
 */
function transactionsFor(recipients: readonly QueuedRecipient[], serverHasDsn: boolean): QueuedRecipient[][] {
  if (!serverHasDsn) return [[...recipients]];
  const groups = new Map<string, QueuedRecipient[]>();
  for (const recipient of recipients) {
    const key = JSON.stringify([recipient.notify ?? [], recipient.orcpt ?? null]);
    const group = groups.get(key) ?? [];
    group.push(recipient);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** Per-recipient refusals (RCPT, or LMTP after DATA) by address. */
function refusals(errors: readonly SmtpClientError[], remoteMta: string): Map<string, RecipientResult> {
  const refused = new Map<string, RecipientResult>();
  for (const error of errors) {
    if (error.recipient) refused.set(error.recipient, results.fromReply(error.recipient, transactionFailure(error, remoteMta)));
  }
  return refused;
}
