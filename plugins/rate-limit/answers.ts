import { type DecisiveResult, defer, disconnect, reject } from 'petrel';
import type { KeyKind } from './rule-keys.js';
import type { CountKind, Rule } from './rules.js';

/** Why a rule refused: its key value, and when trying again would help (undefined: no way to know). */
export interface Refusal {
  readonly rule: Rule;
  readonly value: string;
  readonly retryAfterMs?: number;
}

/**
 * The SMTP reply for an exceeded rule: the rule's action decides the code,
 * and the text says what was exceeded and when to come back, e.g.
 * `451 4.7.1 Too many messages from <a@example.org> (limit 10 per 1 minute), try again in 42 seconds`.
 */
export function answerFor({ rule, value, retryAfterMs }: Refusal): DecisiveResult {
  const what = rule.message ?? `${SUBJECT[rule.count]} ${whom(rule.key, rule.count, value)} (limit ${limitText(rule)})`;
  const text = `${what}, try again ${retryAfterMs === undefined ? 'later' : `in ${spellWait(retryAfterMs)}`}`;
  switch (rule.action) {
    case 'disconnect':
      return disconnect(421, '4.7.0', text);
    case 'defer':
      return defer(451, '4.7.1', text);
    case 'reject':
      return reject(550, '5.7.1', text);
  }
}

/** Fail-closed: the store could not answer, so nothing passes that this rule would have counted. */
export const STORE_UNAVAILABLE = defer(451, '4.3.0', 'Rate limiting is temporarily unavailable, try again later');

const SUBJECT: Record<CountKind, string> = {
  connections: 'Too many connections',
  concurrent: 'Too many simultaneous connections',
  messages: 'Too many messages',
  recipients: 'Too many recipients',
  bytes: 'Too much mail',
  'auth-failures': 'Too many failed logins',
};

function whom(key: KeyKind, count: CountKind, value: string): string {
  switch (key) {
    case 'ip':
    case 'network':
      return `from ${value}`;
    case 'helo':
      return `from HELO ${value}`;
    case 'sender':
      return `from <${value}>`;
    case 'sender-domain':
      return `from ${value}`;
    case 'user':
      return count === 'auth-failures' ? `for ${value}` : `from ${value}`;
    case 'recipient':
      return `for <${value}>`;
    case 'recipient-domain':
      return `for ${value}`;
    case 'listener':
      return 'to this service';
  }
}

export function limitText(rule: Rule): string {
  const amount = rule.count === 'bytes' ? spellBytes(rule.limit) : String(rule.limit);
  return rule.windowMs === undefined ? `${amount} at once` : `${amount} per ${spellWindow(rule.windowMs)}`;
}

const UNITS: readonly [number, string][] = [
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 'second'],
];

/** A window as configured: `minute`, `15 minutes`, `hour`, `90 seconds` (the largest unit that divides it). */
export function spellWindow(ms: number): string {
  for (const [size, name] of UNITS) {
    if (ms % size === 0) return ms === size ? name : `${ms / size} ${name}s`;
  }
  return `${ms} ms`;
}

/** A wait, rounded up so a retry hint is never too early: `42 seconds`, `8 minutes`, `3 hours`; a unit until twice the next. */
export function spellWait(ms: number): string {
  let count = Math.max(1, Math.ceil(ms / 1000));
  let unit = 'second';
  for (const [factor, next] of [[60, 'minute'], [60, 'hour'], [24, 'day']] as const) {
    if (count < 2 * factor) break;
    count = Math.ceil(count / factor);
    unit = next;
  }
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}

function spellBytes(bytes: number): string {
  for (const [size, name] of [[1_073_741_824, 'GiB'], [1_048_576, 'MiB'], [1_024, 'KiB']] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${name}`;
  }
  return `${bytes} bytes`;
}
