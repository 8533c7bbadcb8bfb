import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';

/** A reply the sink gives instead of accepting: `{ code: 550, text: '5.1.1 No such user' }`. */
export interface SinkReply {
  readonly code: number;
  readonly text: string;
}

/** One message the sink accepted. */
export interface SinkMessage {
  readonly from: string;
  readonly to: readonly string[];
  readonly data: Buffer;
  /** Per-recipient DSN parameters as the sink received them (NOTIFY, ORCPT). */
  readonly dsn: Readonly<Record<string, { notify?: string[]; orcpt?: string }>>;
  readonly envelopeDsn?: { ret?: string; envid?: string };
  /** The name the delivering client gave with EHLO (tells nodes apart). */
  readonly helo: string;
  /** When the last byte of DATA arrived. */
  readonly receivedAt: number;
  /** The connection was TLS (STARTTLS or implicit). */
  readonly secure: boolean;
  /** The login, when the client authenticated. */
  readonly user?: string;
  /** MAIL FROM carried REQUIRETLS. */
  readonly requireTls: boolean;
  /** MAIL FROM's BODY parameter: '7bit' unless the client said BODY=8BITMIME. */
  readonly bodyType: string;
  /** MAIL FROM carried SMTPUTF8. */
  readonly smtpUtf8: boolean;
  /** Which connection of this sink carried it (from 1), to tell reuse from new connections. */
  readonly connection: number;
}

export interface SinkOptions {
  /** Decides each RCPT: a reply refuses it, undefined accepts. `count` is how often this address was seen at RCPT (from 1). */
  readonly rcpt?: (address: string, count: number) => SinkReply | undefined;
  /** Decides the end of DATA for the whole message; undefined accepts. May take its time (a slow server). */
  readonly data?: (message: Omit<SinkMessage, 'receivedAt'>) => SinkReply | undefined | Promise<SinkReply | undefined>;
  /** Refuses connections with this greeting instead of 220 (a busy or hostile server). */
  readonly greeting?: SinkReply;
  /** Offers STARTTLS with this certificate; with `implicitTls`, speaks TLS from the first byte. `maxVersion` makes handshakes fail for clients that insist on more. */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer; readonly maxVersion?: 'TLSv1.2' };
  readonly implicitTls?: boolean;
  /** Requires AUTH (PLAIN or LOGIN) with this login before MAIL. */
  readonly auth?: { readonly user: string; readonly password: string };
  /** Speaks LMTP: LHLO, and one reply per recipient after DATA, decided by `lmtpReply` (undefined accepts). */
  readonly lmtp?: boolean;
  readonly lmtpReply?: (address: string) => SinkReply | undefined;
  /** Hides REQUIRETLS from EHLO (smtp-server offers it on TLS connections). */
  readonly hideRequireTls?: boolean;
  /** Does not offer DSN (RFC 3461): NOTIFY, ORCPT, RET and ENVID are not accepted. */
  readonly hideDsn?: boolean;
  /** Does not offer 8BITMIME (RFC 6152): an old server that takes 7-bit mail only. */
  readonly hide8BitMime?: boolean;
  /** Does not offer SMTPUTF8 (RFC 6531). */
  readonly hideSmtpUtf8?: boolean;
  /** Listens on this Unix socket instead of 127.0.0.1 (`port` is then 0). */
  readonly path?: string;
}

/**
 * A local stand-in for a remote mail host: a real SMTP server on
 * 127.0.0.1, port 0, that keeps what it accepts in memory and answers RCPT
 * and DATA as a test scripts it (451 twice then 250, 550 for one address).
 * It can also play a busy server (a 421 greeting), offer STARTTLS or speak
 * TLS from the start, require AUTH (a smarthost), or be an LMTP server with
 * one reply per recipient, on TCP or a Unix socket.
 */
export class SinkServer {
  readonly messages: SinkMessage[] = [];
  /** Connections accepted so far (including refused ones). */
  connections = 0;
  /** The most sessions busy at the same time (see `#busy`). */
  maxConcurrent = 0;
  readonly #rcptCounts = new Map<string, number>();
  /**
   * Sessions at work: from connect (or, on a reused connection, MAIL FROM)
   * until the reply to their DATA or their close, whichever comes first. A
   * client that got its DATA reply has nothing left to do here but QUIT or
   * wait idle in a pool, and its QUIT races the next connection.
   */
  readonly #busy = new Set<string>();
  #waiters: (() => void)[] = [];

  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
  ) {}

  static async start(options: SinkOptions = {}): Promise<SinkServer> {
    let sink: SinkServer | undefined;
    const connectionOf = new WeakMap<SMTPServerSession, number>();
    const disabled = [...(options.tls && !options.implicitTls ? [] : ['STARTTLS']), ...(options.auth ? [] : ['AUTH'])];
    const server = new SMTPServer({
      authOptional: !options.auth,
      disabledCommands: disabled,
      hideDSN: options.hideDsn === true,
      hide8BITMIME: options.hide8BitMime === true,
      hideSMTPUTF8: options.hideSmtpUtf8 === true,
      logger: false,
      size: 0,
      lmtp: options.lmtp === true,
      secure: options.implicitTls === true,
      hideREQUIRETLS: options.hideRequireTls === true,
      ...(options.tls ? { key: options.tls.key, cert: options.tls.cert, ...(options.tls.maxVersion ? { maxVersion: options.tls.maxVersion } : {}) } : {}),
      ...(options.auth ? { authMethods: ['PLAIN', 'LOGIN'] } : {}),
      onConnect(session: SMTPServerSession, done: (error?: Error | null) => void) {
        sink!.connections++;
        connectionOf.set(session, sink!.connections);
        if (!options.greeting) sink!.#markBusy(session.id);
        done(options.greeting ? replyError(options.greeting) : null);
      },
      onClose(session: SMTPServerSession) {
        sink!.#busy.delete(session.id);
      },
      onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, done: (error?: Error | null) => void) {
        sink!.#markBusy(session.id);
        done();
      },
      onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, done: (error: Error | null | undefined, response?: { user: string }) => void) {
        const expected = options.auth;
        if (expected && auth.username === expected.user && auth.password === expected.password) return done(null, { user: auth.username });
        done(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
      },
      onRcptTo(address: SMTPServerAddress, _session: SMTPServerSession, done: (error?: Error | null) => void) {
        const key = address.address.toLowerCase();
        const count = (sink!.#rcptCounts.get(key) ?? 0) + 1;
        sink!.#rcptCounts.set(key, count);
        const reply = options.rcpt?.(address.address, count);
        done(reply ? replyError(reply) : null);
      },
      onData(stream, session, done) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          // When the whole message was here (before any scripted delay of the reply).
          const receivedAt = Date.now();
          const envelope = session.envelope as typeof session.envelope & { dsn?: { ret?: string; envid?: string } };
          const message = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            data: Buffer.concat(chunks),
            dsn: Object.fromEntries(session.envelope.rcptTo.map((r) => [r.address, (r as SMTPServerAddress & { dsn?: { notify?: string[]; orcpt?: string } }).dsn ?? {}])),
            envelopeDsn: envelope.dsn,
            helo: session.hostNameAppearsAs ?? '',
            secure: session.secure === true,
            ...(typeof session.user === 'string' ? { user: session.user } : {}),
            requireTls: (session.envelope as { requireTLS?: boolean }).requireTLS === true,
            bodyType: (session.envelope as { bodyType?: string }).bodyType ?? '7bit',
            smtpUtf8: (session.envelope as { smtpUtf8?: boolean }).smtpUtf8 === true,
            connection: connectionOf.get(session) ?? 0,
          };
          Promise.resolve(options.data?.(message)).then((reply) => {
            sink!.#busy.delete(session.id);
            if (reply) return done(replyError(reply));
            if (options.lmtp) {
              // One reply per recipient; the message is kept for those accepted.
              const replies = message.to.map((address) => options.lmtpReply?.(address));
              const accepted = message.to.filter((_address, i) => replies[i] === undefined);
              if (accepted.length > 0) sink!.messages.push({ ...message, to: accepted, receivedAt });
              sink!.#wake();
              return done(null, replies.map((reply) => (reply ? replyError(reply) : 'OK: delivered')) as never);
            }
            sink!.messages.push({ ...message, receivedAt });
            sink!.#wake();
            done();
          }, done);
        });
      },
    });
    server.on('error', () => undefined);
    if (options.path) await new Promise<void>((resolve) => server.listen(options.path, resolve));
    else await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    sink = new SinkServer(server, options.path ? 0 : (server.server.address() as AddressInfo).port);
    return sink;
  }

  /** Sessions at work right now. */
  get concurrent(): number {
    return this.#busy.size;
  }

  #markBusy(session: string): void {
    this.#busy.add(session);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.#busy.size);
  }

  /** How often RCPT was tried for `address`. */
  rcptCount(address: string): number {
    return this.#rcptCounts.get(address.toLowerCase()) ?? 0;
  }

  /** Messages for `address` (envelope recipient). */
  messagesTo(address: string): SinkMessage[] {
    return this.messages.filter((m) => m.to.some((to) => to.toLowerCase() === address.toLowerCase()));
  }

  /** Resolves once `predicate` holds for the accepted messages, or rejects after `timeoutMs`. */
  async waitUntil(predicate: (messages: readonly SinkMessage[]) => boolean, timeoutMs = 10_000, what = 'the sink to receive the expected mail'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.messages)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${this.messages.length} messages)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

function replyError(reply: SinkReply): Error {
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}
