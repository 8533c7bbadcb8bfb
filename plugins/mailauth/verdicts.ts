import type { AuthenticateResult } from 'mailauth';
import { type CheckAction, type DecisiveResult, defer, type PermanentEnhancedCode, reject, type TransientEnhancedCode } from 'petrel';

export type CheckName = 'spf' | 'dkim' | 'dmarc' | 'arc';

/** What one check found and what the config says to do about it. */
export interface Verdict {
  readonly check: CheckName;
  readonly result: string;
  readonly action: CheckAction;
  /** For the reply and the marks: the domain, policy or reason. */
  readonly detail: string;
}

/** Enhanced codes from RFC 7372 and RFC 8617, the subject and detail shared by 5xx and 4xx. */
const STATUS: Record<CheckName, (result: string) => { detail: string; text: (v: Verdict) => string }> = {
  spf: (result) =>
    result === 'temperror' || result === 'permerror'
      ? { detail: '7.24', text: (v) => `SPF validation error: ${v.detail}` }
      : { detail: '7.23', text: (v) => `SPF validation failed: ${v.detail}` },
  dkim: () => ({ detail: '7.20', text: (v) => `No passing DKIM signature found (dkim=${v.result})` }),
  dmarc: () => ({ detail: '7.26', text: (v) => `Unauthenticated mail refused by the DMARC policy of ${v.detail}` }),
  arc: () => ({ detail: '7.29', text: (v) => `ARC validation failure (arc=${v.result})` }),
};

/** The SMTP reply for a verdict whose action is reject or defer. */
export function refusalFor(verdict: Verdict): DecisiveResult {
  const status = STATUS[verdict.check](verdict.result);
  const text = status.text(verdict);
  return verdict.action === 'defer'
    ? defer(451, `4.${status.detail}` as TransientEnhancedCode, text)
    : reject(550, `5.${status.detail}` as PermanentEnhancedCode, text);
}

const DKIM_WEIGHT = ['none', 'neutral', 'policy', 'temperror', 'permerror', 'fail'];

/**
 * One DKIM result for the message: pass if any signature passed (RFC 6376
 * 6.1: one good signature is enough), otherwise the gravest failure, `none`
 * without signatures.
 */
export function dkimResultOf(result: AuthenticateResult): { result: string; domain: string } {
  const rows = result.dkim.results ?? [];
  const passing = rows.find((row) => row.status.result === 'pass');
  if (passing) return { result: 'pass', domain: passing.signingDomain ?? '' };
  let worst = { result: 'none', domain: '' };
  for (const row of rows) {
    if (DKIM_WEIGHT.indexOf(row.status.result) > DKIM_WEIGHT.indexOf(worst.result)) {
      worst = { result: row.status.result, domain: row.signingDomain ?? '' };
    }
  }
  return worst;
}

/** The domain of the newest ARC-Seal, when the chain validated. */
export function arcSealerOf(result: AuthenticateResult): string | undefined {
  if (!result.arc || result.arc.status.result !== 'pass') return undefined;
  const chain = result.arc.chain ?? [];
  const newest = chain[chain.length - 1] as { 'arc-seal'?: { parsed?: { d?: { value?: string } } } } | undefined;
  return newest?.['arc-seal']?.parsed?.d?.value?.toLowerCase();
}

/** Text after "mx.example: " in mailauth's comments, for replies. */
export function withoutReporter(comment: string | undefined, reporter: string): string {
  if (!comment) return '';
  return comment.startsWith(`${reporter}: `) ? comment.slice(reporter.length + 2) : comment;
}
