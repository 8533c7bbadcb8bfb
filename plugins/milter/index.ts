import {
  accept,
  defer,
  duration,
  type HookRegistrar,
  type HookResult,
  type IncomingMessage,
  inject,
  injectable,
  next,
  noteFinding,
  type PermanentCode,
  type PermanentEnhancedCode,
  PETREL_VERSION,
  recordVerdict,
  type PetrelConfig,
  type PluginMeta,
  reject,
  type Session,
  type Spool,
  TOKENS,
  type Transaction,
  type TransientCode,
  type TransientEnhancedCode,
  writePolicyMarks,
  z,
} from 'petrel';
import { applyModifications } from './apply-modifications.js';
import { macroValues, type ServerFacts } from './macros.js';
import { parseEndpoint } from './milter-connection.js';
import type { Verdict } from './milter-replies.js';
import { MilterSession, type MilterSettings, type StepOutcome } from './milter-session.js';
import { Protocol } from './protocol.js';

const milterSchema = z.strictObject({
  name: z.string().regex(/^[\w.-]+$/, 'letters, digits, dot, dash and underscore').describe('names the milter in logs and replies'),
  socket: z
    .string()
    .refine((socket) => parseEndpoint(socket) !== undefined, 'expected inet:PORT@HOST or unix:/path')
    .describe('where the milter listens: inet:PORT@HOST or unix:/path'),
  timeout: duration().prefault('10s').describe('how long the milter may take to connect and to answer each step (a progress message restarts it)'),
  defaultAction: z
    .enum(['tempfail', 'accept', 'reject'])
    .default('tempfail')
    .describe('when the milter fails (cannot connect, times out, closes, breaks the protocol): tempfail (451 4.7.1), accept (skip it for the rest of the session) or reject (550 5.7.1)'),
});

export const options = z.strictObject({
  milters: z.array(milterSchema).min(1).describe('the milters, asked in this order at every step'),
});

type Options = z.output<typeof options>;

type Step = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'message';

const SESSIONS = 'milter:sessions';
const AUTH_METHOD = 'milter:auth-method';
const DISCARD = 'milter:discard';

const TEMPFAIL = defer(451, '4.7.1', 'Service unavailable - try again later');

/**
 * A client for the Sendmail milter protocol (version 6): each configured
 * milter gets its own connection per SMTP session and sees the session step
 * by step (connect, HELO, MAIL, RCPT, DATA in their hooks; headers, body and
 * end of message in the `message` hook, where the message is on disk). Its
 * answers become SMTP replies, and the changes it asks for at the end of the
 * message are applied there, once, before the message is queued.
 */
@injectable()
export default class MilterClient {
  static readonly meta: PluginMeta = {
    name: 'milter',
    version: '1.0.0',
    description: 'Sendmail milter protocol v6 client: OpenDKIM, clamav-milter, rspamd proxy and any other milter',
  };
  static readonly options = options;

  readonly #settings: MilterSettings[];
  readonly #server: ServerFacts;

  constructor(
    @inject(TOKENS.PluginOptions) opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Spool) private readonly spool: Spool,
  ) {
    this.#settings = opts.milters.map((milter) => ({ ...milter, endpoint: parseEndpoint(milter.socket)!, maxBodyBytes: config.limits.messageSize }));
    this.#server = { hostname: config.server.hostname, version: PETREL_VERSION };
  }

  register(hooks: HookRegistrar): void {
    // Only to tell milters {auth_type}: noted before any plugin decides, used once session.user is set.
    hooks.on('auth', (session, credentials) => {
      session.notes.set(AUTH_METHOD, credentials.method);
      return next();
    }, { priority: 1000 });
    hooks.on('connect', (session, signal) => this.connect(session, signal));
    hooks.on('helo', (session, helo, signal) => this.#each(session, 'helo', undefined, (milter) => milter.helo(helo.hostname, this.#values(session), signal)));
    hooks.on('mail', (session, transaction, from, signal) => this.#each(session, 'mail', transaction, (milter) => milter.mail(from, this.#values(session, transaction), signal)));
    hooks.on('rcpt', (session, transaction, recipient, signal) => this.#each(session, 'rcpt', transaction, (milter) => milter.rcpt(recipient, this.#values(session, transaction, recipient), signal)));
    hooks.on('data', (session, transaction, signal) => this.#each(session, 'data', transaction, (milter) => milter.data(this.#values(session, transaction), signal)));
    hooks.on('message', (session, transaction, message, signal) => this.message(session, transaction, message, signal));
    hooks.on('queue', (session, transaction) => this.queue(session, transaction));
    hooks.on('disconnect', (session) => {
      for (const milter of this.#milters(session)) milter.close();
      return next();
    });
  }

  async connect(session: Session, signal?: AbortSignal): Promise<HookResult> {
    const milters = this.#settings.map((settings) => new MilterSession(settings, (failed, reason) => this.#failed(session, failed, reason)));
    session.notes.set(SESSIONS, milters);
    return this.#each(session, 'connect', undefined, (milter) => milter.connect(this.#values(session), signal));
  }

  /**
   * Headers, body and end of message to each milter in turn; each one's changes
   * are applied before the next one sees the message. Each milter's verdict
   * (pass, with the changes it made; refused; unscanned when it failed) goes
   * to X-Petrel-Filter, the message's log line and its history.
   */
  async message(session: Session, transaction: Transaction, message: IncomingMessage, signal?: AbortSignal): Promise<HookResult> {
    if (this.#discarded(session, transaction)) return next();
    let quarantined = false;
    for (const milter of this.#milters(session)) {
      const scanner = `milter/${milter.settings.name}`;
      const outcome = await milter.message(message, this.#values(session, transaction), signal);
      if (signal?.aborted) return TEMPFAIL;
      if (milter.failure !== undefined) recordVerdict(transaction, message, { scanner, verdict: 'unscanned', reason: `not scanned: ${milter.failure}` });
      if (outcome.kind === 'modify') {
        await applyModifications(outcome.modifications, {
          milter: scanner,
          transaction,
          message,
          spool: this.spool,
          leadingSpace: ((milter.negotiated?.protocol ?? 0) & Protocol.headerLeadingSpace) !== 0,
          log: transaction.log,
        });
        const changes = [...new Set(outcome.modifications.map((change) => change.kind))];
        recordVerdict(transaction, message, { scanner, verdict: 'pass', ...(changes.length > 0 ? { action: changes.join(',') } : {}) });
        quarantined ||= changes.includes('quarantine');
        continue;
      }
      if (outcome.kind === 'continue') {
        if (milter.failure === undefined) recordVerdict(transaction, message, { scanner, verdict: 'pass' });
        continue;
      }
      if (outcome.kind !== 'failed') recordVerdict(transaction, message, { scanner, verdict: outcome.kind === 'refuse' ? outcome.verdict.kind : outcome.kind });
      const result = this.#result(session, transaction, 'message', milter, outcome);
      if (result.kind !== 'next' || this.#discarded(session, transaction)) return result;
    }
    if (quarantined) writePolicyMarks(transaction, message);
    if (transaction.to.length === 0) {
      transaction.notes.set(DISCARD, 'the milters removed every recipient');
      transaction.log.info('milters removed every recipient: the message is discarded');
    }
    return next();
  }

  /** A message a milter discarded gets its 250 and goes nowhere (the sender must not learn it was dropped). */
  queue(session: Session, transaction: Transaction): HookResult {
    if (!this.#discarded(session, transaction)) return next();
    transaction.log.info({ reason: transaction.notes.get(DISCARD) ?? session.notes.get(DISCARD) }, 'message discarded by a milter');
    return accept(`Ok: queued as ${transaction.id}`);
  }

  /** Asks each milter in config order; the first that refuses (or fails, with tempfail/reject) decides. */
  async #each(session: Session, step: Step, transaction: Transaction | undefined, ask: (milter: MilterSession) => Promise<StepOutcome>): Promise<HookResult> {
    for (const milter of this.#milters(session)) {
      if (transaction && this.#discarded(session, transaction)) return next();
      const result = this.#result(session, transaction, step, milter, await ask(milter));
      if (result.kind !== 'next') return result;
    }
    return next();
  }

  #result(session: Session, transaction: Transaction | undefined, step: Step, milter: MilterSession, outcome: StepOutcome): HookResult {
    const name = milter.settings.name;
    const log = transaction?.log ?? session.log;
    switch (outcome.kind) {
      case 'continue':
        return next();
      case 'discard':
        (transaction ?? session).notes.set(DISCARD, `milter ${name} discarded it at ${step}`);
        log.info({ milter: name, step }, 'milter discards the message');
        return next();
      case 'failed':
        return this.#defaultResult(step, milter.settings.defaultAction === 'reject');
      case 'refuse': {
        const result = this.#refusal(step, outcome.verdict);
        log.info({ milter: name, step, verdict: outcome.verdict.kind, reply: 'reply' in result ? `${result.reply.code} ${result.reply.enhanced} ${result.reply.text}` : undefined }, 'milter refused');
        if (transaction) noteFinding(transaction, 'milter', `${name} refused at ${step}`);
        return result;
      }
    }
  }

  #refusal(step: Step, verdict: Verdict): HookResult {
    if (verdict.kind === 'tempfail') return TEMPFAIL;
    if (verdict.kind !== 'reply') return step === 'connect' ? reject(554, '5.7.1', 'Connection rejected') : reject(550, '5.7.1', 'Command rejected');
    const permanent = verdict.code >= 500;
    const enhanced = verdict.enhanced ?? (permanent ? '5.7.1' : '4.7.1');
    const text = verdict.text || (permanent ? 'Command rejected' : 'Service unavailable - try again later');
    return permanent
      ? reject(verdict.code as PermanentCode, enhanced as PermanentEnhancedCode, text)
      : defer(verdict.code as TransientCode, enhanced as TransientEnhancedCode, text);
  }

  #defaultResult(step: Step, permanent: boolean): HookResult {
    if (!permanent) return TEMPFAIL;
    return step === 'connect' ? reject(554, '5.7.1', 'Connection rejected') : reject(550, '5.7.1', 'Command rejected');
  }

  #failed(session: Session, milter: MilterSettings, reason: string): void {
    const transaction = session.transaction;
    (transaction?.log ?? session.log).warn({ milter: milter.name, socket: milter.socket, defaultAction: milter.defaultAction, reason }, `milter ${milter.name} ${reason}`);
    if (transaction) noteFinding(transaction, 'milter', `${milter.name} failed (${reason}); defaultAction ${milter.defaultAction}`);
  }

  #discarded(session: Session, transaction: Transaction): boolean {
    return transaction.notes.has(DISCARD) || session.notes.has(DISCARD);
  }

  #milters(session: Session): readonly MilterSession[] {
    return (session.notes.get(SESSIONS) as MilterSession[] | undefined) ?? [];
  }

  #values(session: Session, transaction?: Transaction, recipient?: Parameters<typeof macroValues>[4]) {
    return macroValues(this.#server, session, session.notes.get(AUTH_METHOD) as string | undefined, transaction, recipient);
  }
}
