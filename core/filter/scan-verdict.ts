import { noteFinding } from '../observe/observers.js';
import type { Transaction } from '../session.js';
import type { IncomingMessage } from '../spool/incoming-message.js';

/** The one header that carries every scanner's verdict on a message. */
export const FILTER_HEADER = 'X-Petrel-Filter';

/**
 * What one scanner said about one message. `unscanned` means the scanner
 * was not asked (too big) or gave no usable answer; `reason` says why.
 */
export interface ScanVerdict {
  /** The plugin's name: `rspamd`, `clamav`. */
  readonly scanner: string;
  readonly verdict: 'clean' | 'spam' | 'virus' | 'unscanned' | (string & {});
  readonly score?: number;
  /** The score at which the scanner calls a message spam, shown as score/threshold. */
  readonly threshold?: number;
  /** Rules that matched (spam scanners). */
  readonly symbols?: readonly string[];
  /** What was found (virus scanners). */
  readonly signature?: string;
  /** What the scanner asked for: `reject`, `add header`, … */
  readonly action?: string;
  /** Why the message was not scanned. */
  readonly reason?: string;
}

const NOTE = 'petrel:filter-verdicts';

interface Verdicts {
  /** Copies of FILTER_HEADER that came with the message were removed. */
  stripped: boolean;
  list: ScanVerdict[];
}

/**
 * Keeps a verdict for the message: in its history (`petrel why`, the
 * console), on its log line (`scans`), and in FILTER_HEADER, which holds all
 * verdicts so far as one field, like Authentication-Results:
 *
 *   X-Petrel-Filter: rspamd=spam (score=7.2/15 action=add header); clamav=clean
 *
 * The first call removes copies of the header the sender put in.
 */
export function recordVerdict(transaction: Transaction, message: IncomingMessage, verdict: ScanVerdict): void {
  const verdicts = verdictsOf(transaction);
  verdicts.list.push(verdict);
  const symbols = verdict.symbols && verdict.symbols.length > 0 ? `; symbols ${verdict.symbols.join(', ')}` : '';
  noteFinding(transaction, verdict.scanner, `${describeVerdict(verdict)}${symbols}`);
  // Every copy left after the first strip is ours: the field is rewritten whole.
  message.headers.remove(FILTER_HEADER);
  verdicts.stripped = true;
  message.headers.prepend(FILTER_HEADER, verdicts.list.map(describeVerdict).join('; '));
}

/** The verdicts so far, each as in the header (`rspamd=clean (score=0.3/15 action=no action)`); empty when nothing scanned it. */
export function scanSummary(transaction: Transaction): string[] {
  const verdicts = transaction.notes.get(NOTE) as Verdicts | undefined;
  return verdicts ? verdicts.list.map(describeVerdict) : [];
}

/** Removes sender-made copies of FILTER_HEADER even when no scanner judges this message (skipped, authenticated). */
export function stripForgedVerdicts(transaction: Transaction, message: IncomingMessage): void {
  const verdicts = verdictsOf(transaction);
  if (verdicts.stripped) return;
  message.headers.remove(FILTER_HEADER);
  verdicts.stripped = true;
}

export function describeVerdict(verdict: ScanVerdict): string {
  const details: string[] = [];
  if (verdict.signature) details.push(verdict.signature);
  if (verdict.score !== undefined) details.push(`score=${verdict.score.toFixed(1)}${verdict.threshold === undefined ? '' : `/${verdict.threshold}`}`);
  if (verdict.action) details.push(`action=${verdict.action}`);
  if (verdict.reason) details.push(verdict.reason);
  // One header field, one line: a scanner's text must not end the field or split the list.
  const text = `${verdict.scanner}=${verdict.verdict}${details.length > 0 ? ` (${details.join(' ')})` : ''}`;
  return text.replace(/[\r\n\0]+/g, ' ').replaceAll(';', ',');
}

function verdictsOf(transaction: Transaction): Verdicts {
  let verdicts = transaction.notes.get(NOTE) as Verdicts | undefined;
  if (!verdicts) {
    verdicts = { stripped: false, list: [] };
    transaction.notes.set(NOTE, verdicts);
  }
  return verdicts;
}
