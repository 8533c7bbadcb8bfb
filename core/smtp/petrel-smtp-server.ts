import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerAddress, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { PetrelError } from '../errors.js';
import { describeDuration } from '../util/describe-duration.js';
import { ServerSessionTrace } from '../trace/server-session-trace.js';
import type { TraceHub } from '../trace/trace-hub.js';
import type { NetworkList } from '../util/networks.js';
import { mailPath } from './mail-path.js';
import type { ClientShares, ShareLimits } from './client-shares.js';
import { ConnectionDeadlines, type DeadlineLimits, type Expired, type Turn } from './connection-deadlines.js';
import { ErrorLimit, type ErrorLimits } from './error-limit.js';
import { readProxyHeader } from './proxy-protocol.js';

/**
 * The two places where Petrel must behave differently from stock smtp-server,
 * done by subclassing rather than patching its prototype (so other users of
 * smtp-server in the same process are unaffected):
 *
 * 1. The greeting pause. smtp-server waits a fixed 100 ms before every 220
 *    (an early-talker check with no option to turn it off). That caps a
 *    client at ten new connections a second. Petrel makes the pause its own
 *    setting, 0 by default; a client that talks during a configured pause
 *    still gets "421 You talk too soon".
 * 2. Enhanced status codes. With ENHANCEDSTATUSCODES on, smtp-server puts its
 *    own guess in front of every reply, so a plugin's `550 5.1.1 ...` would go
 *    out as `550 5.1.1 5.1.1 ...` or worse `550 5.1.1 5.7.1 ...`. A reply text
 *    that already starts with an enhanced code is sent as is.
 *
 * It also runs the `helo` hook (smtp-server has no HELO callback), closes
 * the connection after a reply when a plugin answered `disconnect()`,
 * reads PROXY protocol v1 and v2 headers from trusted load balancers
 * (smtp-server reads only v1, and only from exact addresses), answers VRFY
 * and EXPN as RFC 5321 3.5.3 asks (252, or 502 when the listener says so),
 * accepts quoted local parts (`<"john doe"@example.org>`) and refuses
 * command lines that are not UTF-8 (see mail-path.ts), and tells the
 * handlers when smtp-server resets the envelope (RSET, HELO/EHLO, STARTTLS).
 * It also applies the limits smtp-server lacks: a share of `clients` per
 * client address and network (client-shares.ts; on an implicit TLS listener
 * taken before the handshake), total-time deadlines for a
 * command, a message and a session (connection-deadlines.ts), and the soft
 * and hard error limits (error-limit.ts).
 * Live traces see each command line read and each reply written here
 * (core/trace/; one boolean test per line while nobody watches).
 *
 * The methods relied on are checked at load time, and test/greeting.test.ts
 * fails if an upgrade brings the pause back.
 */

/** Set on an smtp-server session to close the connection after the next error reply. */
export const CLOSE_AFTER_REPLY = Symbol('petrel.closeAfterReply');

/** Set on a parsed MAIL/RCPT address when the path, as the client wrote it, has non-ASCII characters. */
export const NON_ASCII_PATH = Symbol('petrel.nonAsciiPath');

export type PetrelAddress = SMTPServerAddress & { [NON_ASCII_PATH]?: boolean };

/** How VRFY and EXPN are answered: 252 (cannot verify, RFC 5321 3.5.3) or 502 (disabled by policy). */
export type VerifyCommands = 'cannot-verify' | 'disabled';

/** The live trace of a session (core/trace/), on smtp-server's session object, for the session handlers. */
export const SESSION_TRACE = Symbol('petrel.sessionTrace');

/** The trace of an smtp-server session, when the server traces. */
export function traceOf(session: SMTPServerSession): ServerSessionTrace | undefined {
  return (session as SMTPServerSession & { [SESSION_TRACE]?: ServerSessionTrace })[SESSION_TRACE];
}

export interface HeloRequest {
  readonly command: 'HELO' | 'EHLO';
  readonly hostname: string;
}

/** The limits one connection gets (a reload changes them for new connections). */
export type ConnectionLimits = ShareLimits & DeadlineLimits & ErrorLimits;

/** A limit that refused or closed a connection, for the log. */
export interface LimitEvent {
  readonly limit: 'clientsPerAddress' | 'clientsPerNetwork' | 'commandTimeout' | 'dataTimeout' | 'sessionTimeout' | 'hardErrorLimit';
  readonly value: number;
  readonly sessionId: string;
  readonly remoteAddress: string;
}

export interface PetrelServerExtensions {
  readonly greetingDelayMs: number;
  /** The limits new connections get. */
  readonly limits: () => ConnectionLimits;
  /** Connections held per client address and network on this listener. */
  readonly shares: ClientShares;
  readonly onLimit: (event: LimitEvent) => void;
  /** Peers that must start with a PROXY protocol header (v1 or v2); empty: none. */
  readonly proxyFrom: NetworkList;
  readonly vrfy: VerifyCommands;
  /** Runs the helo hook; an error carrying responseCode refuses the command. */
  readonly onHelo: (request: HeloRequest, session: SMTPServerSession, done: (error?: Error | null) => void) => void;
  /** smtp-server cleared the envelope: whatever transaction was open is gone. */
  readonly onReset: (session: SMTPServerSession) => void;
  /** Where the sessions' live traces go, and the listener name they carry. */
  readonly trace?: { readonly hub: TraceHub; readonly listener: string };
}

interface ConnectionInternals {
  _server: PetrelSmtpServer;
  session: SMTPServerSession & { [CLOSE_AFTER_REPLY]?: boolean; [SESSION_TRACE]?: ServerSessionTrace };
  /** Set while an AUTH exchange waits for the client's next line. */
  _nextHandler: unknown;
  _getEnhancedStatusCode(code: number, context?: string | false): string;
  _setListeners(callback: () => void): void;
  connectionReady(next?: () => void): void;
  /** The enhanced status code smtp-server puts before a reply ('' for none). */
  _getEnhancedStatusCode(code: number, context?: string | false): string;
  send(code: number, data?: string | string[] | null, context?: string | false): void;
  close(): void;
  name: string;
  id: string;
  remoteAddress: string;
  // Whose turn it is (see #turn): smtp-server's own state, checked by test/connection-limits.test.ts.
  _ready: boolean;
  _handlerPending: boolean;
  _closing: boolean;
  _closed: boolean;
  _dataStream: unknown;
  _parser: { _dataMode: boolean; dataBytes: number } | false;
}

type CommandCallback = (() => void) | undefined;

type ProxyCallback = Parameters<SMTPServer['_handleProxy']>[1];
type SocketOptions = NonNullable<Parameters<ProxyCallback>[1]>;

/** A client's share of the listener, taken before its connection exists (see PetrelSmtpServer._handleProxy). */
const SHARE_TAKEN = Symbol('petrel.shareTaken');

/** A connection counted against its client's share, and the limits it was admitted under. */
interface TakenShare {
  readonly admitted: true;
  readonly release: () => void;
  readonly limits: ConnectionLimits;
}

type ShareOutcome = TakenShare | { readonly admitted: false; readonly over: 'address' | 'network' };

type PetrelSocketOptions = SMTPConnectionOptions & { [SHARE_TAKEN]?: TakenShare };

const REQUIRED_METHODS: [object, string[]][] = [
  [
    SMTPConnection.prototype,
    ['_setListeners', 'connectionReady', 'send', 'close', 'handler_HELO', 'handler_EHLO', 'handler_VRFY', '_getEnhancedStatusCode', '_parseAddressCommand', '_resetSession', '_onCommand', '_onClose'],
  ],
  [SMTPServer.prototype, ['_handleProxy', '_acceptSocket', '_onError', '_onClientConnect']],
];
for (const [prototype, methods] of REQUIRED_METHODS) {
  for (const method of methods) {
    if (typeof (prototype as Record<string, unknown>)[method] !== 'function') {
      throw new PetrelError(
        'PETREL_GREETING_PATCH',
        `smtp-server has no ${method}(); this smtp-server release is not supported (pin smtp-server to 3.21.x)`,
      );
    }
  }
}

const PROXY_HEADER_TIMEOUT_MS = 10_000;

/** Session ids in smtp-server's own format (16 base-32 characters). */
function connectionId(): string {
  return BigInt(`0x${randomBytes(10).toString('hex')}`).toString(32).padStart(16, '0');
}

const STARTS_WITH_ENHANCED_CODE = /^([245]\.\d{1,3}\.\d{1,3}) /;

const NON_ASCII = /[^\x00-\x7F]/;

const VERIFY_REPLIES = {
  VRFY: '2.5.0 Cannot VRFY user; RCPT TO will tell whether mail for it is accepted',
  EXPN: '2.5.0 Cannot EXPN list; RCPT TO will tell whether mail for it is accepted',
} as const;

const SERVER_TURN: Turn = { kind: 'server' };
const COMMAND_TURN: Turn = { kind: 'command' };

class PetrelConnection extends SMTPConnection {
  /** Set once the connection is admitted; fixed for its lifetime. */
  #limits: ConnectionLimits | undefined;
  #deadlines: ConnectionDeadlines | undefined;
  #errors: ErrorLimit | undefined;
  /** The share this connection holds, when it was taken before the connection existed. */
  readonly #shareTaken: TakenShare | undefined;
  #releaseShare: (() => void) | undefined;
  /** Waiting errorDelay before handling a command: the server's turn. */
  #pausing = false;
  #trace: ServerSessionTrace | undefined;

  constructor(server: PetrelSmtpServer, socket: net.Socket | tls.TLSSocket, options?: PetrelSocketOptions | null) {
    super(server, socket, options);
    this.#shareTaken = options?.[SHARE_TAKEN];
    this.#releaseShare = this.#shareTaken?.release;
  }

  override init(): void {
    const self = this as unknown as ConnectionInternals;
    const tracing = self._server.petrel.trace;
    if (tracing) {
      this.#trace = new ServerSessionTrace(tracing.hub, this as unknown as { id: string; remoteAddress: string; remotePort: number }, tracing.listener);
      self.session[SESSION_TRACE] = this.#trace;
      if (this.#trace.watched) this.#trace.opened();
    }
    self._setListeners(() => {
      const server = self._server;
      if (server.options.maxClients && server.connections.size > server.options.maxClients) {
        self.send(421, `${self.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      if (!this.#admit(self)) return;
      const delay = server.petrel.greetingDelayMs;
      if (delay <= 0) {
        self.connectionReady();
        return;
      }
      setTimeout(() => self.connectionReady(), delay).unref();
    });
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    const ownCode = typeof data === 'string' ? STARTS_WITH_ENHANCED_CODE.exec(data)?.[1] : undefined;
    const replyContext = ownCode ? false : context;
    super.send(code, data, replyContext);
    const self = this as unknown as ConnectionInternals;
    if (this.#trace?.watched) this.#trace.reply(replyLines(code, data, self._getEnhancedStatusCode(code, replyContext)));
    if (code >= 400 && self.session[CLOSE_AFTER_REPLY] && code !== 421) this.close();
    this.#deadlines?.replied(code);
    if (self._closing || self._closed) return;
    const enhanced = ownCode ?? self._getEnhancedStatusCode(code, context);
    if (this.#errors?.replied(code, enhanced, context === 'DATA_OK')) {
      this.#closeFor(self, 'hardErrorLimit', '4.7.0', 'Too many errors in this session, closing connection');
    }
  }

  /** Past the soft error limit every command waits errorDelay before it is handled. */
  override _onCommand(command: Buffer, callback: CommandCallback): void {
    // Traced as read, before any error delay: an AUTH continuation is known by the handler waiting for it.
    if (this.#trace?.watched) this.#trace.command(command, Boolean((this as unknown as ConnectionInternals)._nextHandler));
    const delay = this.#errors?.delay() ?? 0;
    if (delay === 0) return super._onCommand(command, callback);
    this.#pausing = true;
    setTimeout(() => {
      this.#pausing = false;
      const self = this as unknown as ConnectionInternals;
      if (self._closing || self._closed) return callback?.();
      super._onCommand(command, callback);
    }, delay).unref();
  }

  override _onClose(): void {
    this.#deadlines?.stop();
    this.#releaseShare?.();
    super._onClose();
    if (this.#trace?.watched) this.#trace.closed();
  }

  /** Takes the client's share of the listener (unless it was taken already), or refuses it with 421 4.7.0 (and closes). */
  #admit(self: ConnectionInternals): boolean {
    const share: ShareOutcome = this.#shareTaken ?? self._server.takeShare(self.remoteAddress, self.id);
    if (!share.admitted) {
      self.send(421, `4.7.0 ${self.name} Too many connections from your ${share.over}, try again later`);
      return false;
    }
    const { limits } = share;
    this.#releaseShare = share.release;
    this.#limits = limits;
    this.#errors = new ErrorLimit(limits);
    this.#deadlines = new ConnectionDeadlines(limits, () => this.#turn(self), (what) => this.#timedOut(self, what, limits));
    return true;
  }

  #turn(self: ConnectionInternals): Turn {
    if (!self._ready || self._handlerPending || this.#pausing) return SERVER_TURN;
    const parser = self._parser;
    if (parser && parser._dataMode) return { kind: 'data', bytes: parser.dataBytes };
    // The message is in and the data hooks or the queue have not answered yet.
    if (self._dataStream) return SERVER_TURN;
    return COMMAND_TURN;
  }

  #timedOut(self: ConnectionInternals, what: Expired, limits: ConnectionLimits): void {
    const texts: Record<Expired, string> = {
      command: `No complete command within ${describeDuration(limits.commandTimeout)}, closing connection`,
      data: 'Message not received in the time allowed, closing connection',
      session: `Session time limit of ${describeDuration(limits.sessionTimeout)} reached, closing connection`,
    };
    this.#closeFor(self, `${what}Timeout`, '4.4.2', texts[what]);
  }

  /** A limit ends the session: 421 (which closes the connection) and a log line. */
  #closeFor(self: ConnectionInternals, limit: LimitEvent['limit'], enhanced: string, text: string): void {
    const value = this.#limits?.[limit] ?? 0;
    self._server.petrel.onLimit({ limit, value, sessionId: self.id, remoteAddress: self.remoteAddress });
    self.send(421, `${enhanced} ${self.name} ${text}`);
  }

  override handler_HELO(command: Buffer, callback: () => void): void {
    this.#runHelo('HELO', command, () => super.handler_HELO(command, callback), callback);
  }

  override handler_EHLO(command: Buffer, callback: () => void): void {
    this.#runHelo('EHLO', command, () => super.handler_EHLO(command, callback), callback);
  }

  override handler_VRFY(command: Buffer, callback: () => void): void {
    this.#answerVerify('VRFY', command, callback);
  }

  /** smtp-server has no EXPN; a method of this name is what makes the command known. */
  handler_EXPN(command: Buffer, callback: () => void): void {
    this.#answerVerify('EXPN', command, callback);
  }

  /**
   * Neither command discloses anything: RFC 5321 7.3 lets a site that will not
   * verify addresses answer 252 (not 250, not 550, which would answer the
   * question), or 502 when the commands are switched off.
   */
  #answerVerify(name: 'VRFY' | 'EXPN', command: Buffer, callback: () => void): void {
    const self = this as unknown as ConnectionInternals;
    if (command.toString().trim().split(/\s+/).length < 2) self.send(501, `5.5.4 Syntax: ${name} address`);
    else if (self._server.petrel.vrfy === 'disabled') self.send(502, `5.5.1 ${name} command is disabled`);
    else self.send(252, VERIFY_REPLIES[name]);
    callback();
  }

  override _parseAddressCommand(name: string, raw: Buffer | string): ReturnType<SMTPConnection['_parseAddressCommand']> {
    // RFC 6531 3.3: a command is UTF-8. Other bytes (a Latin-1 address) are a syntax
    // error here, not U+FFFD replacement characters in an address we accepted.
    if (Buffer.isBuffer(raw) && !isUtf8(raw)) return false;
    const command = raw.toString();
    const path = mailPath(command);
    if (path === 'invalid') return false;
    const parsed = super._parseAddressCommand(name, path ? path.command : command);
    if (!parsed || !path) return parsed;
    parsed.address = path.restore(parsed.address);
    (parsed as PetrelAddress)[NON_ASCII_PATH] = NON_ASCII.test(path.text);
    return parsed;
  }

  override _resetSession(): void {
    super._resetSession();
    const self = this as unknown as ConnectionInternals;
    self._server.petrel.onReset(self.session);
  }

  #runHelo(name: 'HELO' | 'EHLO', command: Buffer, proceed: () => void, callback: () => void): void {
    const parts = command.toString().trim().split(/\s+/);
    // Malformed commands are answered by smtp-server's own syntax checks.
    if (parts.length !== 2) return proceed();
    const self = this as unknown as ConnectionInternals;
    self._server.petrel.onHelo({ command: name, hostname: parts[1] }, self.session, (error) => {
      if (!error) return proceed();
      self.send((error as Error & { responseCode?: number }).responseCode ?? 550, error.message, false);
      callback();
    });
  }
}

/** A reply as smtp-server writes it (see its send()): the code on every line, `-` on all but the last. */
function replyLines(code: number, data: string | string[] | null | undefined, enhanced: string): string[] {
  const prefix = (last: boolean) => `${code}${last ? ' ' : '-'}${enhanced ? `${enhanced} ` : ''}`;
  if (Array.isArray(data)) return data.map((line, i) => `${prefix(i === data.length - 1)}${line}`);
  return [[code, enhanced, data].filter((part) => part !== undefined && part !== null && part !== '').join(' ')];
}

export class PetrelSmtpServer extends SMTPServer {
  /** Accepted sockets whose implicit TLS handshake is still ahead of them. */
  readonly #handshakes = new WeakSet<net.Socket>();

  constructor(
    options: SMTPServerOptions,
    readonly petrel: PetrelServerExtensions,
  ) {
    super(options);
  }

  /** Counts a connection from `address` against its client's share of the listener, or logs the share it would pass. */
  takeShare(address: string, sessionId: string): ShareOutcome {
    const limits = this.petrel.limits();
    const share = this.petrel.shares.admit(address, limits);
    if (share.admitted) return { admitted: true, release: share.release, limits };
    const limit = share.over === 'address' ? 'clientsPerAddress' : 'clientsPerNetwork';
    this.petrel.onLimit({ limit, value: share.limit, sessionId, remoteAddress: address });
    return share;
  }

  /**
   * The implicit TLS handshake (port 465) happens before there is a connection to put a
   * deadline on, under smtp-server's idle timeout only: a client trickling a ClientHello
   * could hold the socket for as long as it liked. It gets commandTimeout for the whole
   * handshake, like a command line.
   */
  override _acceptSocket(socket: net.Socket, handshake: boolean): (() => void) | false {
    const release = super._acceptSocket(socket, handshake);
    if (!release || !handshake) return release;
    this.#handshakes.add(socket);
    // The TLS socket is destroyed, not the raw one under it: tearing the TCP socket away from
    // under a handshake in progress crashes Node (smtp-server's _upgrade says the same).
    const deadline = setTimeout(() => {
      (this._pendingSockets.get(socket) ?? socket).destroy();
    }, this.petrel.limits().commandTimeout);
    deadline.unref();
    return () => {
      clearTimeout(deadline);
      release();
    };
  }

  override _handleProxy(socket: net.Socket, callback: ProxyCallback): void {
    const proceed = this.#handshakes.has(socket) ? this.#shareBeforeHandshake(socket, callback) : callback;
    if (!this.petrel.proxyFrom.contains(socket.remoteAddress ?? '')) {
      super._handleProxy(socket, proceed);
      return;
    }
    readProxyHeader(socket, PROXY_HEADER_TIMEOUT_MS).then(
      (addresses) => proceed(null, { id: connectionId(), ...addresses }),
      (error: Error) => {
        socket.destroy();
        callback(error);
      },
    );
  }

  /**
   * An implicit TLS handshake holds a socket (and a slot of smtp-server's pending sockets,
   * as many as `clients`) before there is a connection to count: one address opening
   * `clients` sockets and never finishing a handshake locked everyone else out of port 465.
   * So the client's share is taken as soon as its address is known (after the PROXY header,
   * if any) and handed on to the connection; the socket closing without one gives it back.
   * A client over its share is dropped: nothing can be written to it before TLS.
   */
  #shareBeforeHandshake(socket: net.Socket, callback: ProxyCallback): ProxyCallback {
    return (error, socketOptions) => {
      // A socket destroyed already may have emitted its 'close': it gets no share (its handshake fails anyway).
      if (error || socket.destroyed) return callback(error, socketOptions);
      const id = socketOptions?.id ?? connectionId();
      const share = this.takeShare(socketOptions?.remoteAddress ?? socket.remoteAddress ?? '', id);
      if (!share.admitted) {
        socket.destroy();
        return callback(new Error(`too many connections from the client's ${share.over}`));
      }
      socket.once('close', share.release);
      const taken: SocketOptions & PetrelSocketOptions = { ...socketOptions, id, [SHARE_TAKEN]: share };
      callback(null, taken);
    };
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    // Mirrors SMTPServer.connect, with Petrel's connection class.
    const connection = new PetrelConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (error: Error) => (this as unknown as { _onError(e: Error): void })._onError(error));
    connection.on('connect', (data: unknown) =>
      (this as unknown as { _onClientConnect(d: unknown): void })._onClientConnect(data),
    );
    connection.init();
  }
}
