import { z } from 'zod';
import type { PetrelConfig } from './schema.js';
import { describeDuration } from '../util/describe-duration.js';
import { cidr, duration, size } from './units.js';

/**
 * The schema of `limits`: what one client may cost a listener (sizes,
 * connections, time, errors). Set once for every listener under `limits:`,
 * and per listener under `listeners[].limits:` (any key; unset keys come from
 * the top-level ones), so an MX port can be stricter than a submission port.
 * docs/operations.md ("Running on the Internet") compares the defaults with
 * Postfix's.
 */

const describe = {
  messageSize: 'SIZE advertised; larger messages get 552',
  headerSize: 'largest header block',
  recipients: 'recipients per message',
  clients: 'simultaneous connections per listener',
  clientsPerAddress: 'simultaneous connections from one client address; 0: no limit beyond clients',
  clientsPerNetwork: 'simultaneous connections from one client network (IPv4 /24, IPv6 /64); 0: no limit beyond clients',
  clientLimitExceptions: 'client networks (CIDR) that clientsPerAddress and clientsPerNetwork do not apply to',
  commandLength: 'longest command line in bytes',
  socketTimeout: 'idle time (no byte from the client) before a connection is closed',
  commandTimeout: 'time a client has to send one whole command line, counted from our previous reply; every byte does not restart it',
  dataTimeout: 'time a client has to send a whole message (354 to the final dot), extended by one second for every minDataRate bytes received',
  minDataRate: 'bytes a second that extend dataTimeout, so large messages on slow links get their time and a trickle does not',
  sessionTimeout: 'longest a connection may last; then it is closed at the next command (never in the middle of a message)',
  softErrorLimit: 'errors (4xx/5xx replies, but 452 4.5.3 for recipients past recipients) in one session, without a message accepted, after which every reply waits errorDelay',
  hardErrorLimit: 'errors in one session, without a message accepted, after which the client gets 421 4.7.0 and is disconnected',
  errorDelay: 'the pause before each reply once softErrorLimit is reached',
} as const;

/** Postfix's own default exceptions are $mynetworks; ours are this host (local applications, benchmarks). */
const DEFAULT_EXCEPTIONS = ['127.0.0.0/8', '::1/128'];

/** Node.js arms a longer timer for 1 ms instead (a deadline would be checked a thousand times a second). */
const LONGEST_TIMER_MS = 24 * 24 * 60 * 60_000;

/** A time limit that becomes a timer on every connection. */
function timerDuration() {
  return duration()
    .refine((ms) => ms > 0, 'expected a duration above 0')
    .refine((ms) => ms <= LONGEST_TIMER_MS, 'expected at most 24d');
}

function fields() {
  return {
    messageSize: size(),
    headerSize: size(),
    recipients: z.number().int().min(1),
    clients: z.number().int().min(1),
    clientsPerAddress: z.number().int().min(0),
    clientsPerNetwork: z.number().int().min(0),
    clientLimitExceptions: z.array(cidr()),
    commandLength: z.number().int().min(512),
    socketTimeout: duration(),
    commandTimeout: timerDuration(),
    dataTimeout: timerDuration(),
    minDataRate: size().refine((bytes) => bytes > 0, 'expected at least 1 byte a second'),
    sessionTimeout: duration().refine((ms) => ms > 0, 'expected a duration above 0'),
    softErrorLimit: z.number().int().min(1),
    hardErrorLimit: z.number().int().min(1),
    errorDelay: duration().refine((ms) => ms <= 60_000, 'at most 1m'),
  };
}

type Fields = ReturnType<typeof fields>;
export type LimitName = keyof Fields;

const DEFAULTS: { [K in LimitName]: z.input<Fields[K]> } = {
  messageSize: '25MiB',
  headerSize: '1MiB',
  recipients: 100,
  clients: 1000,
  clientsPerAddress: 50,
  clientsPerNetwork: 100,
  clientLimitExceptions: DEFAULT_EXCEPTIONS,
  commandLength: 4096,
  socketTimeout: '5m',
  commandTimeout: '5m',
  dataTimeout: '10m',
  minDataRate: 500,
  sessionTimeout: '30m',
  softErrorLimit: 10,
  hardErrorLimit: 20,
  errorDelay: '1s',
};

function withDefaults() {
  const shape = fields();
  return Object.fromEntries(
    Object.entries(shape).map(([name, schema]) => [
      name,
      (schema as z.ZodType).prefault(DEFAULTS[name as LimitName]).describe(describe[name as LimitName]),
    ]),
  ) as { [K in LimitName]: z.ZodPrefault<Fields[K]> };
}

function optional() {
  const shape = fields();
  return Object.fromEntries(
    Object.entries(shape).map(([name, schema]) => [name, schema.optional().describe(describe[name as LimitName])]),
  ) as { [K in LimitName]: z.ZodOptional<Fields[K]> };
}

export const limitsSchema = z.strictObject(withDefaults()).prefault({});

export const listenerLimitsSchema = z
  .strictObject(optional())
  .optional()
  .describe('limits for this listener only; unset keys come from the top-level limits');

export type Limits = z.output<typeof limitsSchema>;
export type ListenerLimits = z.output<typeof listenerLimitsSchema>;

/** The limits in force on one listener: its own, then the top-level ones. */
export function effectiveLimits(limits: Limits, own: ListenerLimits): Limits {
  if (!own) return limits;
  const merged: Record<string, unknown> = { ...limits };
  for (const [name, value] of Object.entries(own)) if (value !== undefined) merged[name] = value;
  return merged as Limits;
}

const perListener = new WeakMap<PetrelConfig, Map<string, Limits>>();

/** The limits in force on the listener named `name` under `config` (computed once per config). */
export function limitsOf(config: PetrelConfig, name: string): Limits {
  let byName = perListener.get(config);
  if (!byName) perListener.set(config, (byName = new Map()));
  let limits = byName.get(name);
  if (!limits) {
    limits = effectiveLimits(config.limits, config.listeners.find((listener) => listener.name === name)?.limits);
    byName.set(name, limits);
  }
  return limits;
}

export interface LimitProblem {
  /** The key that must change: under the listener when it set it, else at the top level. */
  readonly path: (string | number)[];
  readonly message: string;
}

/**
 * Limits that are each valid but contradict one another on a listener,
 * reported at the key to change. `own` is what the listener set itself.
 * (Shares that are not below `clients` only make the share useless; the
 * listener warns about them at start, see limitWarnings.)
 */
export function limitProblems(limits: Limits, own: ListenerLimits, listenerIndex: number | undefined): LimitProblem[] {
  const problems: LimitProblem[] = [];
  const at = (name: LimitName) => (listenerIndex !== undefined && own?.[name] !== undefined ? ['listeners', listenerIndex, 'limits', name] : ['limits', name]);
  if (limits.softErrorLimit > limits.hardErrorLimit) {
    problems.push({ path: at('softErrorLimit'), message: `softErrorLimit (${limits.softErrorLimit}) must not be above hardErrorLimit (${limits.hardErrorLimit})` });
  }
  for (const name of ['commandTimeout', 'dataTimeout'] as const) {
    if (limits.sessionTimeout < limits[name]) {
      problems.push({
        path: at('sessionTimeout'),
        message: `sessionTimeout (${describeDuration(limits.sessionTimeout)}) is shorter than ${name} (${describeDuration(limits[name])}): a session could not finish one message`,
      });
    }
  }
  return problems;
}

/**
 * Limits that are allowed but probably not what the operator wants, for a
 * warning at start: RFC 5321 4.5.3.2 asks a server to wait at least 5 minutes
 * for a command and 3 minutes for each block of data, and a share of
 * `clients` that is not below it lets one client take every connection.
 */
export function limitWarnings(limits: Limits): string[] {
  const warnings: string[] = [];
  const below = [
    ['commandTimeout', limits.commandTimeout, 5 * 60_000],
    ['socketTimeout', limits.socketTimeout, 3 * 60_000],
  ] as const;
  for (const [name, value, minimum] of below) {
    if (value < minimum) {
      warnings.push(`limits.${name} (${describeDuration(value)}) is below the ${describeDuration(minimum)} RFC 5321 4.5.3.2 asks for; slow clients may be cut off`);
    }
  }
  for (const name of ['clientsPerAddress', 'clientsPerNetwork'] as const) {
    if (limits[name] >= limits.clients) {
      warnings.push(`limits.${name} (${limits[name]}) is not below limits.clients (${limits.clients}): one client can take every connection; lower it (0 turns it off)`);
    }
  }
  return warnings;
}
