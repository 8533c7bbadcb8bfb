import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import SMTPConnection, { type SMTPConnectionAuth, type SMTPConnectionOptions, type SMTPConnectionSendInfo, type SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import type { QueuedRecipient } from '../../queue/contract.js';
import { parseReply, results, type Delivery, type DeliveryReply, type RecipientResult } from '../outbound.js';
import { transactionFailure, type SmtpClientError } from './client-errors.js';

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
  ) {
    const dead = () => {
      this.#alive = false;
    };
    connection.on('end', dead);
    connection.on('error', dead);
  }

  /**
   * Connects and runs the handshake. Rejects with nodemailer's error
   * (`code`, and `response` when the server said no): see connectFailure().
   */
  static async open(options: SMTPConnectionOptions, remoteMta: string, signal?: AbortSignal): Promise<SmtpSession> {
    const connection = new SMTPConnection({ logger: false, ...options });
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
    return new SmtpSession(connection, remoteMta, options.lmtp === true);
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
   * recipient with LMTP). Recipients whose DSN NOTIFY differs go in separate
   * transactions on this connection, since one transaction carries one set.
   * Never throws: a failure becomes the results it means.
   */
  async send(delivery: Delivery, recipients: readonly QueuedRecipient[] = delivery.recipients): Promise<RecipientResult[]> {
    const answers: RecipientResult[] = [];
    for (const group of byNotify(recipients)) {
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

  async #transaction(delivery: Delivery, group: readonly QueuedRecipient[]): Promise<RecipientResult[]> {
    const addresses = group.map((r) => r.address);
    const envelope = envelopeOf(delivery, group, !this.lmtp);
    let stream: Readable;
    try {
      stream = await delivery.open();
    } catch (error) {
      // Nothing was sent: the session stays good for the next transaction.
      const reply: DeliveryReply = { code: 451, enhanced: '4.3.0', text: `local error reading the message: ${(error as Error).message}` };
      return addresses.map((address) => results.deferred(address, reply));
    }
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
      return addresses.map((address) => refused.get(address) ?? results.delivered(address, accepted));
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

/** MAIL FROM and RCPT TO parameters for one transaction. */
function envelopeOf(delivery: Delivery, group: readonly QueuedRecipient[], relaying: boolean): SMTPEnvelope {
  const { envelope, size } = delivery.message;
  const orcpts = new Set(group.map((r) => r.orcpt));
  const dsn = {
    ret: envelope.dsn?.ret,
    envid: envelope.dsn?.envid,
    notify: group[0].notify && group[0].notify.length > 0 ? [...group[0].notify] : undefined,
    // One ORCPT per transaction: passed on only when every recipient of the group has the same.
    orcpt: orcpts.size === 1 ? group[0].orcpt : undefined,
  };
  const hasDsn = Object.values(dsn).some((value) => value !== undefined);
  return {
    from: envelope.from === '' ? false : envelope.from,
    to: group.map((r) => r.address),
    size,
    use8BitMime: envelope.bodyType !== '7bit',
    requireTLSExtensionEnabled: relaying && envelope.requireTls,
    ...(hasDsn ? { dsn } : {}),
  };
}

/** Recipients in runs that share a NOTIFY list, in their original order within each run. */
function byNotify(recipients: readonly QueuedRecipient[]): QueuedRecipient[][] {
  const groups = new Map<string, QueuedRecipient[]>();
  for (const recipient of recipients) {
    const key = (recipient.notify ?? []).join(',');
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
