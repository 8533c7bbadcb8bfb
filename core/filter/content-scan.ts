import { addPolicyMark, writePolicyMarks } from '../policy/policy-marks.js';
import { defer, type HookResult, next } from '../hooks/results.js';
import type { Session, Transaction } from '../session.js';
import type { IncomingMessage } from '../spool/incoming-message.js';
import { describeDuration } from '../util/describe-duration.js';
import type { ScanOptions } from './scan-options.js';
import { recordVerdict, type ScanVerdict, stripForgedVerdicts } from './scan-verdict.js';

/**
 * A scanner that could not give a verdict: unreachable, no answer in time,
 * an answer cut short or one that makes no sense. Any error a scan throws
 * counts the same; this one lets the plugin say which it was.
 */
export class ScanFailure extends Error {
  override readonly name = 'ScanFailure';
}

/** What a scan found and what follows from it. */
export interface ScanOutcome {
  readonly verdict: Omit<ScanVerdict, 'scanner'>;
  /** The answer to the client: reject or defer; next() (or nothing) lets the message go on. */
  readonly result?: HookResult;
  /** Quarantine the message (local delivery files it as Junk), for this reason. */
  readonly quarantine?: string;
}

export interface ScanRequest {
  /** The plugin's name; names the verdict in the header, the log and the history. */
  readonly scanner: string;
  readonly options: ScanOptions;
  readonly session: Session;
  readonly transaction: Transaction;
  readonly message: IncomingMessage;
  /** The message hook's signal (aborted when the hook times out). */
  readonly signal: AbortSignal;
}

/** The reply when a scanner failed and failMode is tempfail. */
export const UNSCANNED_REPLY = defer(451, '4.7.1', 'Message content could not be scanned, please try again later');

/**
 * Runs one scanner on one message from the plugin's `message` handler, and
 * applies the rules every scanner shares. The `message` hook runs once per
 * message, after DATA, whatever the number of recipients, so this scans once.
 *
 * - authenticated sessions are not scanned unless `scanAuthenticated`;
 * - a message over `maxSize` is not sent: it passes, marked "not scanned: too big";
 * - a scan that throws or outlasts `timeout` gives 451 4.7.1 (`failMode:
 *   tempfail`), never a 250 for an unscanned message; with `failMode: accept`
 *   the message passes, marked not scanned and why;
 * - the verdict goes to the history, the log line and X-Petrel-Filter;
 * - `quarantine` becomes the quarantine mark of core/policy (X-Petrel-Quarantine).
 *
 *   hooks.on('message', (session, transaction, message, signal) =>
 *     scanMessage({ scanner: 'rspamd', options, session, transaction, message, signal }, (abort) => this.check(message, abort)));
 */
export async function scanMessage(request: ScanRequest, scan: (signal: AbortSignal) => Promise<ScanOutcome>): Promise<HookResult> {
  const { scanner, options, session, transaction, message } = request;
  stripForgedVerdicts(transaction, message);
  writePolicyMarks(transaction, message);
  if (session.user !== undefined && !options.scanAuthenticated) return next();
  if (message.size > options.maxSize) {
    recordVerdict(transaction, message, { scanner, verdict: 'unscanned', reason: `not scanned: too big, ${message.size} bytes > maxSize ${options.maxSize}` });
    return next();
  }
  const started = Date.now();
  let outcome: ScanOutcome;
  try {
    outcome = await withDeadline(scan, options.timeout, request.signal);
  } catch (error) {
    const reason = `not scanned: ${error instanceof Error ? error.message : String(error)}`;
    transaction.log.warn({ scanner, err: error, ms: Date.now() - started, failMode: options.failMode }, `${scanner} gave no verdict`);
    recordVerdict(transaction, message, { scanner, verdict: 'unscanned', reason });
    return options.failMode === 'accept' ? next() : UNSCANNED_REPLY;
  }
  recordVerdict(transaction, message, { scanner, ...outcome.verdict });
  if (outcome.quarantine !== undefined) {
    addPolicyMark(transaction, 'quarantine', `${scanner}: ${outcome.quarantine}`);
    writePolicyMarks(transaction, message);
  }
  return outcome.result ?? next();
}

/** The scan's answer, or a ScanFailure once `ms` have passed (the scan's signal is aborted then too). */
async function withDeadline<T>(scan: (signal: AbortSignal) => Promise<T>, ms: number, hookSignal: AbortSignal): Promise<T> {
  const abort = new AbortController();
  const stop = () => abort.abort(new ScanFailure('the hook was stopped'));
  hookSignal.addEventListener('abort', stop, { once: true });
  if (hookSignal.aborted) stop();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const failure = new ScanFailure(`no answer within ${describeDuration(ms)}`);
      abort.abort(failure);
      reject(failure);
    }, ms);
  });
  try {
    return await Promise.race([scan(abort.signal), deadline]);
  } finally {
    clearTimeout(timer);
    hookSignal.removeEventListener('abort', stop);
  }
}
