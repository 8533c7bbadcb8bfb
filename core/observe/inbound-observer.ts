import type { HookResult } from '../hooks/results.js';
import { HANDLER_FAILED } from '../hooks/runner.js';
import type { CheckEntry, ReceivedRecord, RefusedRecord, SessionFacts } from '../history/history-record.js';
import type { HistoryStore } from '../history/history-store.js';
import type { Session, Transaction } from '../session.js';
import type { ServerSessionTrace } from '../trace/server-session-trace.js';
import type { VerdictResult } from '../trace/trace-event.js';
import type { Observer } from './observers.js';

/** A handler that said next() this slowly is worth a line in the history. */
const SLOW_MS = 250;
const MAX_SESSION_CHECKS = 50;
const MAX_TRANSACTION_CHECKS = 200;
const MAX_REFUSED_RCPTS = 100;

type RefusalStage = RefusedRecord['stage'];

/**
 * Watches one inbound session for its live trace and its history: every
 * handler's verdict and every finding go to the trace when someone watches;
 * decisions, failures, slow handlers and findings are kept for the
 * transaction and written as one record when it ends (accepted: `received`;
 * refused at MAIL, RCPT or after DATA: `refused`). What happened before MAIL
 * (connect, HELO, AUTH) is part of every transaction's record.
 */
export class InboundObserver implements Observer {
  readonly #sessionChecks: CheckEntry[] = [];
  #checks: CheckEntry[] = [];
  #refusedRcpts: { rcpt: string; reply: string; plugin?: string }[] = [];
  #transaction: Transaction | undefined;
  /** The transaction's record was written (accepted or refused). */
  #recorded = true;

  constructor(
    private readonly session: Session,
    private readonly trace: ServerSessionTrace | undefined,
    private readonly history: HistoryStore | undefined,
  ) {}

  verdict(hook: string, plugin: string, result: HookResult | undefined, ms: number): void {
    const kind: VerdictResult = result === undefined ? 'error' : result.kind;
    const answer = result === undefined ? HANDLER_FAILED : result;
    const reply = 'reply' in answer ? `${answer.reply.code} ${answer.reply.enhanced} ${answer.reply.text}` : undefined;
    if (this.trace?.watched) this.trace.verdict(hook, plugin, kind, ms, reply);
    if (!this.history || (kind === 'next' && ms < SLOW_MS)) return;
    this.#keep({ at: Date.now(), hook, plugin, result: kind, ms: Math.round(ms * 10) / 10, ...(reply ? { reply } : {}) });
  }

  finding(plugin: string, text: string): void {
    if (this.trace?.watched) this.trace.note(text, plugin);
    if (this.history) this.#keep({ at: Date.now(), plugin, note: text });
  }

  /** The core's own note (TLS, message size): traced, not kept (the record has those facts). */
  note(text: string): void {
    if (this.trace?.watched) this.trace.note(text);
  }

  /** MAIL FROM: a new transaction (the previous one's refused recipients are recorded first). */
  mailFrom(transaction: Transaction): void {
    this.#recordAbandoned();
    this.#transaction = transaction;
    this.trace?.sender(transaction.from.address);
    this.#checks = [];
    this.#refusedRcpts = [];
    this.#recorded = false;
  }

  rcpt(address: string): void {
    this.trace?.recipient(address);
  }

  rcptRefused(rcpt: string, reply: string, plugin: string | undefined): void {
    if (this.#refusedRcpts.length < MAX_REFUSED_RCPTS) this.#refusedRcpts.push({ rcpt, reply, ...(plugin ? { plugin } : {}) });
  }

  /** The transaction was refused: at MAIL, or after DATA (data, message, queue hooks, or the core). */
  refused(stage: RefusalStage, reply: string, plugin: string | undefined, msgid?: string): void {
    const transaction = this.#transaction;
    this.#recorded = true;
    if (!this.history || !transaction) return;
    const record: RefusedRecord = {
      id: transaction.id,
      t: 'refused',
      at: Date.now(),
      stage,
      from: transaction.from.address,
      to: transaction.to.map((to) => to.address),
      ...(this.#refusedRcpts.length > 0 ? { refused: this.#refusedRcpts } : {}),
      reply,
      ...(plugin ? { plugin } : {}),
      ...(msgid ? { msgid } : {}),
      session: this.#facts(),
      checks: [...this.#sessionChecks, ...this.#checks],
    };
    this.history.append(record);
  }

  accepted(size: number, msgid: string | undefined, reply: string): void {
    const transaction = this.#transaction;
    this.#recorded = true;
    if (!this.history || !transaction) return;
    const record: ReceivedRecord = {
      id: transaction.id,
      t: 'received',
      at: Date.now(),
      ...(msgid ? { msgid } : {}),
      from: transaction.from.address,
      to: transaction.to.map((to) => to.address),
      size,
      session: this.#facts(),
      checks: [...this.#sessionChecks, ...this.#checks],
      ...(this.#refusedRcpts.length > 0 ? { refused: this.#refusedRcpts } : {}),
      reply,
    };
    this.history.append(record);
  }

  closed(): void {
    this.#recordAbandoned();
  }

  /** A transaction left without MAIL's or DATA's verdict (RSET, QUIT, a new MAIL) whose recipients were refused. */
  #recordAbandoned(): void {
    if (this.#recorded || this.#refusedRcpts.length === 0) return;
    const last = this.#refusedRcpts.at(-1)!;
    this.refused('rcpt', last.reply, last.plugin);
  }

  #keep(entry: CheckEntry): void {
    const list = this.session.transaction ? this.#checks : this.#sessionChecks;
    if (list.length < (list === this.#checks ? MAX_TRANSACTION_CHECKS : MAX_SESSION_CHECKS)) list.push(entry);
  }

  #facts(): SessionFacts {
    const { session } = this;
    const tls = session.tls.secure ? [session.tls.protocol, session.tls.cipher].filter(Boolean).join(' ') || 'TLS' : undefined;
    return {
      sid: session.id,
      client: session.remote.address,
      ...(session.remote.hostname ? { hostname: session.remote.hostname } : {}),
      ...(session.helo ? { helo: session.helo } : {}),
      listener: session.listener.name,
      ...(tls ? { tls } : {}),
      ...(session.user ? { user: session.user } : {}),
    };
  }
}
