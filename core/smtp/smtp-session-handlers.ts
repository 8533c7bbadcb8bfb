import type { Readable } from 'node:stream';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerSession,
} from 'smtp-server';
import type { Clock } from '../clock.js';
import { limitsOf } from '../config/limits-schema.js';
import { scanSummary } from '../filter/scan-verdict.js';
import type { InboundHookName } from '../hooks/catalogue.js';
import { defer, reject, type DecisiveResult, type HookResult, type SmtpReply } from '../hooks/results.js';
import type { HistoryStore } from '../history/history-store.js';
import type { Logger } from '../log/logger.js';
import { InboundObserver } from '../observe/inbound-observer.js';
import { attachObserver } from '../observe/observers.js';
import type { NewMessage, Queue } from '../queue/contract.js';
import { newQueueId } from '../queue/queue-id.js';
import type { Address, ListenerInfo } from '../session.js';
import type { IncomingMessage } from '../spool/incoming-message.js';
import type { Spool } from '../spool/spool.js';
import { isStorageFull } from '../spool/storage-full.js';
import { mailRefusal, rcptRefusal, type OfferedExtensions } from './envelope-rules.js';
import { CLOSE_AFTER_REPLY, NON_ASCII_PATH, traceOf, type HeloRequest, type PetrelAddress } from './petrel-smtp-server.js';
import { receivedHeader } from './received-header.js';
import type { SessionPipeline } from './session-pipeline.js';
import { replyClass, type Metrics } from '../metrics/metrics.js';
import { SessionState, TransactionState } from './session-state.js';

type Done = (error?: Error | null) => void;

/** An error smtp-server turns into the reply `code enhanced text`. */
export function replyError(reply: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(`${reply.enhanced} ${reply.text}`), { responseCode: reply.code });
}

const REPLIES = {
  authRequired: reject(530, '5.7.0', 'Authentication required'),
  tlsRequired: reject(530, '5.7.0', 'Must issue a STARTTLS command first'),
  authFailed: reject(535, '5.7.8', 'Authentication credentials invalid'),
  recipientNotAccepted: reject(550, '5.7.1', 'Recipient address rejected: no policy accepted it'),
  bareLineEnding: reject(554, '5.6.0', 'Message contains bare CR or LF line endings (RFC 5321 2.3.8); lines must end with CRLF'),
  headerTooLarge: reject(552, '5.3.4', 'Message header too large'),
  oversize: reject(552, '5.3.4', 'Message size exceeds fixed maximum message size'),
  queueFailed: defer(451, '4.3.0', 'Requested action aborted: local error in processing, please try again later'),
  tooManyRecipients: defer(452, '4.5.3', 'Error: too many recipients'),
  receiveFailed: defer(451, '4.3.0', 'Requested action aborted: error while receiving the message'),
  storageFull: defer(452, '4.3.1', 'Requested action not taken: insufficient system storage, please try again later'),
} as const;

export interface SessionHandlerDeps {
  readonly listener: ListenerInfo;
  /** The pipeline new sessions start on (it changes on reload; a session keeps its own). */
  readonly pipeline: () => SessionPipeline;
  readonly metrics?: Metrics;
  readonly spool: Spool;
  readonly queue: () => Queue;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Whether the client may AUTH without TLS (insecureAuth on a loopback client). */
  readonly insecureAuthAllowed: (remoteAddress: string) => boolean;
  /** Whether the connecting peer may use XCLIENT. */
  readonly xclientAllowed: (remoteAddress: string) => boolean;
  /** Commands never offered (the server-wide disabled list). */
  readonly disabledCommands: readonly string[];
  /** Whether REQUIRETLS (RFC 8689) is offered to clients over TLS. */
  readonly offerRequireTls: boolean;
  /** Where each transaction's record goes (accepted or refused); none when history is off. */
  readonly history?: HistoryStore;
}

/**
 * Turns smtp-server's callbacks into hook runs. This is the whole inbound
 * path: connect → helo → auth → mail → rcpt → data → message → queue, each
 * hook's result becoming the SMTP reply, and the 250 for a message sent only
 * after the queue has made it durable.
 */
export class SmtpSessionHandlers {
  readonly #sessions = new WeakMap<SMTPServerSession, SessionState>();
  /** Each session's live trace and history (core/observe/). */
  readonly #observers = new WeakMap<SessionState, InboundObserver>();

  constructor(private readonly deps: SessionHandlerDeps) {}

  /** Sessions with a transaction in flight (used by graceful shutdown). */
  readonly inFlight = new Set<SessionState>();

  onConnect = (session: SMTPServerSession, done: Done): void => {
    const pipeline = this.deps.pipeline();
    pipeline.enter();
    const state = new SessionState(session, this.deps.listener, pipeline, this.deps.logger.child({ sid: session.id }));
    this.#sessions.set(session, state);
    const observer = new InboundObserver(state, traceOf(session), this.deps.history);
    this.#observers.set(state, observer);
    attachObserver(state, observer);
    this.deps.metrics?.connections.inc({ listener: this.deps.listener.name });
    this.deps.metrics?.connectionsOpen.inc({ listener: this.deps.listener.name });
    this.#restrictAuth(session, state);
    if (session.secure) state.tls = tlsInfoOf(undefined, session);
    state.log.debug({ remote: session.remoteAddress, hostname: state.remote.hostname, listener: this.deps.listener.name }, 'connection');
    this.#run('connect', session, state.log, state.pipeline.runner.run('connect', state.log, state), done, () => done());
  };

  onSecure = (socket: unknown, session: SMTPServerSession, done: Done): void => {
    const state = this.#sessions.get(session);
    if (state) {
      state.tls = tlsInfoOf(socket, session);
      this.#restrictAuth(session, state);
      this.#observer(state).note(`TLS established: ${[state.tls.protocol, state.tls.cipher].filter(Boolean).join(' ')}`);
    }
    done();
  };

  onHelo = (request: HeloRequest, session: SMTPServerSession, done: Done): void => {
    const state = this.#state(session);
    const helo = { command: request.command, hostname: request.hostname };
    this.#run('helo', session, state.log, state.pipeline.runner.run('helo', state.log, state, helo), done, () => {
      state.helo = request.hostname;
      done();
    });
  };

  onAuth = (
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    done: (error: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): void => {
    const state = this.#state(session);
    if (auth.method === 'XCLIENT') return this.#xclientLogin(auth.username ?? '', state, done);
    const credentials = {
      method: auth.method,
      username: auth.username ?? '',
      password: auth.password ?? undefined,
      validatePassword: auth.method === 'CRAM-MD5' ? (secret: string) => auth.validatePassword(secret) : undefined,
    };
    state.pipeline.runner.run('auth', state.log, state, credentials).then(({ result, decidedBy }) => {
      if (result.kind === 'accept') {
        state.log.info({ user: credentials.username, method: auth.method, plugin: decidedBy }, 'authenticated');
        this.#count('auth', 235, decidedBy);
        return done(null, { user: credentials.username });
      }
      const refusal = result.kind === 'next' ? REPLIES.authFailed : result;
      state.log.info({ user: credentials.username, method: auth.method, plugin: decidedBy, code: refusal.reply.code }, 'authentication failed');
      this.#count('auth', refusal.reply.code, decidedBy);
      this.#markDisconnect(session, refusal);
      done(replyError(refusal.reply));
    }, (error: unknown) => done(error as Error));
  };

  /**
   * XCLIENT LOGIN=<user> (Postfix XCLIENT_README): the front end has authenticated the
   * client itself and names the user; only front ends listed in `xclient` may send
   * XCLIENT at all (the command is disabled for everyone else), so the name is taken
   * as it is, without running the auth hook.
   */
  #xclientLogin(user: string, state: SessionState, done: (error: Error | null, response?: SMTPServerAuthenticationResponse) => void): void {
    if (!this.deps.xclientAllowed(state.connectedFrom)) return done(replyError(REPLIES.authFailed.reply));
    state.log.info({ user, method: 'XCLIENT', front: state.connectedFrom }, 'authenticated by the XCLIENT front end');
    done(null, { user });
  }

  onMailFrom = (address: SMTPServerAddress, session: SMTPServerSession, done: Done): void => {
    const state = this.#state(session);
    const listener = this.deps.listener;
    const from = toAddress(address);
    const id = newQueueId(this.deps.clock.now());
    const transaction = new TransactionState(id, from, state.log.child({ qid: id }));
    const observer = this.#observer(state);
    observer.mailFrom(transaction);
    attachObserver(transaction, observer);
    const coreRefusal =
      mailRefusal(from, isNonAscii(address), this.#offered(state)) ??
      (listener.requireTls && !state.tls.secure ? REPLIES.tlsRequired : listener.submission && state.user === undefined ? REPLIES.authRequired : undefined);
    if (coreRefusal) {
      observer.refused('mail', replyText(coreRefusal.reply), 'core');
      return done(replyError(coreRefusal.reply));
    }
    state.transaction = transaction;
    const refused = (reply: SmtpReply, plugin: string | undefined) => observer.refused('mail', replyText(reply), plugin);
    this.#run('mail', session, transaction.log, state.pipeline.runner.run('mail', transaction.log, state, transaction, from), (error) => {
      state.transaction = undefined;
      done(error);
    }, () => done(), refused);
  };

  onRcptTo = (address: SMTPServerAddress, session: SMTPServerSession, done: Done): void => {
    const state = this.#state(session);
    const transaction = state.transaction;
    if (!transaction) return done(replyError(reject(503, '5.5.1', 'Error: need MAIL command').reply));
    const recipient = toAddress(address);
    const observer = this.#observer(state);
    observer.rcpt(recipient.address);
    const refusal = rcptRefusal(recipient, isNonAscii(address), transaction.from);
    if (refusal) {
      observer.rcptRefused(recipient.address, replyText(refusal.reply), 'core');
      return done(replyError(refusal.reply));
    }
    // A repeated RCPT is answered as before but not added again: smtp-server lets it through
    // (and counts only distinct addresses against the limit), and each copy would be delivered.
    const key = recipient.address.toLowerCase();
    if (transaction.to.some((to) => to.address.toLowerCase() === key)) return done();
    if (transaction.to.length >= limitsOf(state.pipeline.config, state.listener.name).recipients) {
      observer.rcptRefused(recipient.address, replyText(REPLIES.tooManyRecipients.reply), 'core');
      return done(replyError(REPLIES.tooManyRecipients.reply));
    }
    state.pipeline.runner.run('rcpt', transaction.log, state, transaction, recipient).then(({ result, decidedBy }) => {
      if (result.kind === 'accept') {
        transaction.to.push(recipient);
        this.#count('rcpt', 250, decidedBy);
        return done();
      }
      const refusal = result.kind === 'next' ? REPLIES.recipientNotAccepted : result;
      this.#count('rcpt', refusal.reply.code, decidedBy);
      transaction.log.info({ rcpt: recipient.address, plugin: decidedBy, reply: replyText(refusal.reply) }, 'recipient refused');
      observer.rcptRefused(recipient.address, replyText(refusal.reply), decidedBy);
      this.#markDisconnect(session, refusal);
      done(replyError(refusal.reply));
    }, (error: unknown) => done(error as Error));
  };

  onData = (stream: SMTPServerDataStream, session: SMTPServerSession, done: (error?: Error | null, message?: string) => void): void => {
    const state = this.#state(session);
    const transaction = state.transaction;
    if (!transaction) return done(replyError(reject(503, '5.5.1', 'Error: need MAIL command').reply));
    this.inFlight.add(state);
    // The transaction ends before its reply goes out: smtp-server reads the next
    // pipelined command (RFC 2920) as soon as it has sent the reply, so a MAIL
    // that came in the same packet as the final dot must find a clean session.
    const end = () => {
      this.inFlight.delete(state);
      if (state.transaction === transaction) state.transaction = undefined;
    };
    this.#receive(stream, session, state, transaction).then(
      (reply) => {
        end();
        done(null, reply);
      },
      (error: Error) => {
        end();
        done(error);
      },
    );
  };

  /** smtp-server reset its envelope (RSET, HELO/EHLO, STARTTLS, XCLIENT): no transaction is open any more. */
  onReset = (session: SMTPServerSession): void => {
    const state = this.#sessions.get(session);
    if (state) state.transaction = undefined;
  };

  onClose = (session: SMTPServerSession): void => {
    const state = this.#sessions.get(session);
    if (!state) return;
    this.#sessions.delete(session);
    this.#observers.get(state)?.closed();
    this.deps.metrics?.connectionsOpen.dec({ listener: this.deps.listener.name });
    state.pipeline.runner
      .run('disconnect', state.log, state)
      .catch(() => undefined)
      .finally(() => state.pipeline.leave());
    state.log.debug({ accepted: state.accepted, ms: Date.now() - state.startedAt }, 'disconnected');
  };

  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession, state: SessionState, transaction: TransactionState): Promise<string> {
    const log = transaction.log;
    const started = Date.now();
    const dataRun = await state.pipeline.runner.run('data', log, state, transaction);
    if (dataRun.result.kind !== 'next' && dataRun.result.kind !== 'accept') {
      return this.#refuse(session, state, 'data', dataRun.result, dataRun.decidedBy, transaction, 0);
    }
    const limits = limitsOf(state.pipeline.config, state.listener.name);
    let failure: unknown;
    const outcome = await this.deps.spool
      .receive(transaction.id, stream as Readable, { maxBytes: limits.messageSize, maxHeaderBytes: limits.headerSize })
      .catch((error: unknown) => {
        log.error({ err: error }, 'failed to write the message to the spool');
        failure = error;
        return undefined;
      });
    if (outcome === undefined) return this.#refuse(session, state, 'data', isStorageFull(failure) ? REPLIES.storageFull : REPLIES.receiveFailed, 'core', transaction, 0);
    if (outcome.kind !== 'received') {
      const refusal = outcome.kind === 'bare-line-ending' ? REPLIES.bareLineEnding : outcome.kind === 'oversize' ? REPLIES.oversize : REPLIES.headerTooLarge;
      return this.#refuse(session, state, 'data', refusal, 'core', transaction, outcome.bytes);
    }
    const message = outcome.message;
    this.#observer(state).note(`message received: ${message.size} bytes, Message-ID ${message.headers.getFirst('message-id') ?? '(none)'}`);
    try {
      message.headers.prepend(
        'Received',
        receivedHeader({
          session: state,
          protocol: session.transmissionType || 'ESMTP',
          smtpUtf8: transaction.from.args.SMTPUTF8 === true,
          byHost: state.pipeline.config.server.hostname,
          queueId: transaction.id,
          recipients: transaction.to.map((to) => to.address),
          date: new Date(this.deps.clock.now()),
        }),
      );
      for (const hook of ['message', 'queue'] as const) {
        const run = await state.pipeline.runner.run(hook, log, state, transaction, message);
        if (run.result.kind === 'accept' && hook === 'queue') {
          return this.#accepted(state, transaction, message, run.decidedBy, started, run.result.text);
        }
        if (run.result.kind !== 'next' && run.result.kind !== 'accept') {
          return this.#refuse(session, state, hook, run.result, run.decidedBy, transaction, message.size, message.headers.getFirst('message-id'));
        }
      }
      try {
        await this.deps.queue().enqueue(newMessageOf(state, transaction, message, this.deps.clock.now()));
      } catch (error) {
        log.error({ err: error, code: 'PETREL_QUEUE_UNAVAILABLE' }, 'queue failed to store the message');
        return this.#refuse(session, state, 'queue', isStorageFull(error) ? REPLIES.storageFull : REPLIES.queueFailed, 'core', transaction, message.size, message.headers.getFirst('message-id'));
      }
      return this.#accepted(state, transaction, message, undefined, started);
    } finally {
      // The queue moved or copied the file; whatever is left is not ours to keep. A failure
      // here must not turn a 250 for a queued message into an error (the client would send it again).
      await this.deps.spool.discard(message.file.path).catch((error: unknown) => log.warn({ err: error }, 'could not remove the spooled file'));
    }
  }

  #accepted(state: SessionState, transaction: TransactionState, message: IncomingMessage, plugin: string | undefined, started: number, text?: string): string {
    state.accepted++;
    this.#count('queue', 250, plugin ?? 'core');
    this.deps.metrics?.messages.inc({ listener: this.deps.listener.name, result: 'accepted' });
    this.deps.metrics?.bytes.inc({ listener: this.deps.listener.name }, message.size);
    transaction.log.info(
      {
        result: 'queued',
        from: transaction.from.address,
        to: transaction.to.map((to) => to.address),
        size: message.size,
        msgid: message.headers.getFirst('message-id'),
        plugin,
        ...scansOf(transaction),
        ms: Date.now() - started,
      },
      'message accepted',
    );
    const reply = text ? `2.0.0 ${text}` : `2.0.0 Ok: queued as ${transaction.id}`;
    this.#observer(state).accepted(message.size, message.headers.getFirst('message-id'), `250 ${reply}`);
    return reply;
  }

  #refuse(
    session: SMTPServerSession,
    state: SessionState,
    stage: 'data' | 'message' | 'queue',
    refusal: DecisiveResult,
    plugin: string | undefined,
    transaction: TransactionState,
    size: number,
    msgid?: string,
  ): never {
    const log = transaction.log;
    const reply = refusal.kind === 'accept' ? REPLIES.queueFailed.reply : refusal.reply;
    this.#observer(state).refused(stage, replyText(reply), plugin, msgid);
    this.#count('message', reply.code, plugin);
    this.deps.metrics?.messages.inc({ listener: this.deps.listener.name, result: reply.code >= 500 ? 'rejected' : 'deferred' });
    log.info(
      { result: refusal.kind, from: transaction.from.address, to: transaction.to.map((to) => to.address), size, plugin, reply: replyText(reply), ...scansOf(transaction) },
      'message refused',
    );
    this.#markDisconnect(session, refusal);
    throw replyError(reply);
  }

  /** Calls `proceed` when the hook did not refuse, else answers with the refusal (after telling `refused`). */
  #run(
    hook: InboundHookName,
    session: SMTPServerSession,
    log: Logger,
    run: Promise<{ result: HookResult; decidedBy?: string }>,
    done: Done,
    proceed: () => void,
    refused?: (reply: SmtpReply, plugin: string | undefined) => void,
  ): void {
    run.then(({ result, decidedBy }) => {
      if (result.kind === 'next' || result.kind === 'accept') return proceed();
      this.#count(hook, result.reply.code, decidedBy);
      log.info({ plugin: decidedBy, reply: replyText(result.reply) }, 'refused');
      refused?.(result.reply, decidedBy);
      this.#markDisconnect(session, result);
      done(replyError(result.reply));
    }, (error: unknown) => done(error as Error));
  }

  /** One reply, counted by hook, class and the plugin that decided it. */
  #count(hook: InboundHookName, code: number, plugin: string | undefined): void {
    this.deps.metrics?.replies.inc({ hook, class: replyClass(code), plugin: plugin ?? 'default' });
  }

  #markDisconnect(session: SMTPServerSession, result: DecisiveResult | HookResult): void {
    if (result.kind === 'disconnect') (session as SMTPServerSession & { [CLOSE_AFTER_REPLY]?: boolean })[CLOSE_AFTER_REPLY] = true;
  }

  #observer(state: SessionState): InboundObserver {
    const observer = this.#observers.get(state);
    if (!observer) throw new Error(`no observer for session ${state.id}`);
    return observer;
  }

  #state(session: SMTPServerSession): SessionState {
    const state = this.#sessions.get(session);
    if (!state) throw new Error(`no state for session ${session.id}`);
    return state;
  }

  /**
   * The commands this session may not use: AUTH is offered only over TLS
   * (unless insecureAuth is on and the client is on loopback), XCLIENT only
   * to the configured front ends.
   */
  #restrictAuth(session: SMTPServerSession, state: SessionState): void {
    const disabled = [...this.deps.disabledCommands];
    if (!this.#offered(state).auth) disabled.push('AUTH');
    if (!this.deps.xclientAllowed(state.connectedFrom)) disabled.push('XCLIENT', 'XFORWARD');
    session.disabledCommands = disabled;
  }

  /** The extensions whose MAIL FROM parameters this session may use (what its EHLO reply offered). */
  #offered(state: SessionState): OfferedExtensions {
    return {
      auth: this.deps.listener.auth && (state.tls.secure || this.deps.insecureAuthAllowed(state.connectedFrom)),
      requireTls: this.deps.offerRequireTls && state.tls.secure,
    };
  }

}

function tlsInfoOf(socket: unknown, session: SMTPServerSession): { secure: boolean; servername?: string; cipher?: string; protocol?: string } {
  const cipher = (socket as { getCipher?: () => { name: string; version: string } } | undefined)?.getCipher?.() ?? session.tlsOptions ?? undefined;
  const servername = typeof session.servername === 'string' ? session.servername : undefined;
  return {
    secure: true,
    servername,
    cipher: cipher ? cipher.name : undefined,
    protocol: cipher ? cipher.version : undefined,
  };
}

function isNonAscii(address: SMTPServerAddress): boolean {
  return (address as PetrelAddress)[NON_ASCII_PATH] === true;
}

function toAddress(address: SMTPServerAddress): Address {
  return {
    address: address.address,
    args: address.args || {},
    ...(address.dsn ? { dsn: { notify: address.dsn.notify, orcpt: address.dsn.orcpt } } : {}),
  };
}

/** The content scanners' verdicts for the message's log line; nothing when no scanner ran. */
function scansOf(transaction: TransactionState): { scans?: string[] } {
  const scans = scanSummary(transaction);
  return scans.length > 0 ? { scans } : {};
}

function replyText(reply: SmtpReply): string {
  return `${reply.code} ${reply.enhanced} ${reply.text}`;
}

function newMessageOf(state: SessionState, transaction: TransactionState, message: IncomingMessage, now: number): NewMessage {
  const args = transaction.from.args;
  const ret = typeof args.RET === 'string' ? (args.RET.toUpperCase() as 'FULL' | 'HDRS') : undefined;
  const envid = typeof args.ENVID === 'string' ? args.ENVID : undefined;
  const body = typeof args.BODY === 'string' ? args.BODY.toLowerCase() : '7bit';
  return {
    id: transaction.id,
    envelope: {
      from: transaction.from.address,
      dsn: ret || envid ? { ret, envid } : undefined,
      smtpUtf8: args.SMTPUTF8 === true,
      bodyType: body === '8bitmime' || body === 'binarymime' ? body : '7bit',
      requireTls: args.REQUIRETLS === true,
    },
    recipients: transaction.to.map((to) => ({ address: to.address, notify: to.dsn?.notify, orcpt: to.dsn?.orcpt })),
    origin: { remoteAddress: state.remote.address, helo: state.helo, user: state.user, listener: state.listener.name },
    receivedAt: now,
    headerBlock: message.headers.toBuffer(),
    file: message.file,
    messageId: message.headers.getFirst('message-id'),
  };
}
