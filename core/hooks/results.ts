/**
 * What a hook handler answers. One small tagged union: the runner only needs
 * `kind` to decide, and the SMTP adapter only needs `reply` to answer.
 *
 * The reply codes are typed so that a temporary answer can never carry a
 * permanent code and the other way round: `reject(450, ...)` and
 * `defer(550, ...)` do not compile (see test/results.types.test.ts).
 */

/** Permanent negative completion replies a plugin may give (RFC 5321 4.2.2, RFC 4954, RFC 3463). */
export type PermanentCode =
  | 500 | 501 | 502 | 503 | 504 | 521 | 530 | 534 | 535 | 538
  | 550 | 551 | 552 | 553 | 554 | 555 | 556;

/** Transient negative completion replies a plugin may give. */
export type TransientCode = 421 | 450 | 451 | 452 | 454 | 455;

/** RFC 3463 enhanced status codes, class digit fixed by the reply kind. */
export type PermanentEnhancedCode = `5.${number}.${number}`;
export type TransientEnhancedCode = `4.${number}.${number}`;
export type EnhancedCode = `${2 | 4 | 5}.${number}.${number}`;

/** One SMTP reply as the client will see it: `550 5.7.1 text`. */
export interface SmtpReply {
  readonly code: number;
  readonly enhanced: EnhancedCode;
  readonly text: string;
}

export interface NextResult { readonly kind: 'next' }
export interface AcceptResult { readonly kind: 'accept'; readonly text?: string }
export interface RejectResult { readonly kind: 'reject'; readonly reply: SmtpReply }
export interface DeferResult { readonly kind: 'defer'; readonly reply: SmtpReply }
export interface DisconnectResult { readonly kind: 'disconnect'; readonly reply: SmtpReply }

export type HookResult = NextResult | AcceptResult | RejectResult | DeferResult | DisconnectResult;

/** A result that ends the hook chain. */
export type DecisiveResult = Exclude<HookResult, NextResult>;

const NEXT: NextResult = Object.freeze({ kind: 'next' });

/** No opinion: let the next handler decide. */
export function next(): NextResult {
  return NEXT;
}

/** Decide in favour now; later handlers of this hook do not run. */
export function accept(text?: string): AcceptResult {
  return text === undefined ? { kind: 'accept' } : { kind: 'accept', text: oneLine(text) };
}

/** Refuse permanently (5xx). The client must not retry. */
export function reject(code: PermanentCode, enhanced: PermanentEnhancedCode, text: string): RejectResult {
  return { kind: 'reject', reply: makeReply(code, enhanced, text, 5) };
}

/** Refuse for now (4xx). The client should retry later. */
export function defer(code: TransientCode, enhanced: TransientEnhancedCode, text: string): DeferResult {
  return { kind: 'defer', reply: makeReply(code, enhanced, text, 4) };
}

/** Answer, then close the connection (421 for a temporary reason, 5xx for a permanent one). */
export function disconnect(
  code: TransientCode | PermanentCode,
  enhanced: TransientEnhancedCode | PermanentEnhancedCode,
  text: string,
): DisconnectResult {
  return { kind: 'disconnect', reply: makeReply(code, enhanced, text) };
}

const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}$/;

function makeReply(code: number, enhanced: string, text: string, replyClass?: 4 | 5): SmtpReply {
  // The types catch mistakes at compile time; these checks catch plugins written
  // in plain JavaScript, which would otherwise put a malformed line on the wire.
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    throw new TypeError(`SMTP reply code must be 4xx or 5xx, got ${String(code)}`);
  }
  if (replyClass !== undefined && Math.floor(code / 100) !== replyClass) {
    throw new TypeError(`${replyClass === 5 ? 'reject' : 'defer'}() needs a ${replyClass}xx code, got ${code}`);
  }
  if (!ENHANCED_CODE.test(enhanced) || enhanced[0] !== String(code)[0]) {
    throw new TypeError(`enhanced status code "${enhanced}" does not match reply code ${code}`);
  }
  if (typeof text !== 'string') throw new TypeError(`reply text must be a string, got ${describe(text)}`);
  return { code, enhanced: enhanced as EnhancedCode, text: oneLine(text) };
}

/**
 * A reply is one line per text line; CR and LF inside would split it and let
 * client-controlled text (an address, a scanner's message) inject replies.
 */
function oneLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ').trim();
}

export function isDecisive(result: HookResult): result is DecisiveResult {
  return result.kind !== 'next';
}

const REFUSALS = { reject, defer, disconnect } as Record<'reject' | 'defer' | 'disconnect', (code: number, enhanced: string, text: string) => HookResult>;

/**
 * What a handler returned, made again by the helpers, which check it as they
 * check their arguments; a TypeError says what is wrong. A plugin in plain
 * JavaScript (or one that casts) may write `{ kind: 'reject', reply: { code:
 * 250 } }` by hand; that must be a plugin error, not a 250 for a recipient
 * that was dropped. The runner calls this on every result.
 */
export function checkedResult(value: unknown): HookResult {
  if (typeof value !== 'object' || value === null) throw notAResult(value);
  const { kind, reply, text } = value as { kind?: unknown; reply?: unknown; text?: unknown };
  switch (kind) {
    case 'next':
      return next();
    case 'accept':
      if (text !== undefined && typeof text !== 'string') throw new TypeError(`accept() text must be a string, got ${describe(text)}`);
      return accept(text);
    case 'reject':
    case 'defer':
    case 'disconnect': {
      if (typeof reply !== 'object' || reply === null) throw new TypeError(`a ${kind} result needs a reply { code, enhanced, text }`);
      const { code, enhanced, text: replyText } = reply as { code?: unknown; enhanced?: unknown; text?: unknown };
      return REFUSALS[kind](code as number, enhanced as string, replyText as string);
    }
    default:
      throw notAResult(value);
  }
}

function notAResult(value: unknown): TypeError {
  const what = typeof value === 'object' && value !== null && 'kind' in value ? `an object of kind ${JSON.stringify(value.kind)}` : describe(value);
  return new TypeError(`returned ${what} instead of next(), accept(), reject(), defer() or disconnect()`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : typeof value;
}
