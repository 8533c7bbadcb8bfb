import { cidr, duration, parseSize, type Rate, z } from 'petrel';
import { KEY_KINDS, RECIPIENT_KEY_KINDS, SESSION_KEY_KINDS, type KeyKind } from './rule-keys.js';

/** What a rule counts. */
export const COUNT_KINDS = ['connections', 'concurrent', 'messages', 'recipients', 'bytes', 'auth-failures'] as const;
export type CountKind = (typeof COUNT_KINDS)[number];

/** The answer when a limit is exceeded: 421 4.7.0 and close, 451 4.7.1, or 550 5.7.1. */
export const ACTIONS = ['disconnect', 'defer', 'reject'] as const;
export type Action = (typeof ACTIONS)[number];

/** What a rule does when the store (Redis) cannot answer. */
export type FailMode = 'open' | 'closed';

/** Counts that belong to a session, not to a message: they can only be keyed by what a session knows. */
const SESSION_COUNTS: readonly CountKind[] = ['connections', 'concurrent', 'auth-failures'];

const DEFAULT_ACTION: Record<CountKind, Action> = {
  connections: 'disconnect',
  concurrent: 'disconnect',
  messages: 'defer',
  recipients: 'defer',
  bytes: 'defer',
  'auth-failures': 'disconnect',
};

const ruleSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a name of letters, digits, ".", "-" and "_"')
      .optional()
      .describe('names the rule in logs, replies and `petrel limits`; defaults to <count>-per-<key>'),
    count: z.enum(COUNT_KINDS).describe('what is counted'),
    key: z.enum(KEY_KINDS).describe('what it is counted per'),
    limit: z.union([z.number(), z.string()]).describe('how many per window (bytes: a size like 100MiB); for concurrent, how many at once'),
    window: duration().optional().describe('the period the limit is for (1m, 1h, 1d); not for concurrent'),
    action: z.enum(ACTIONS).optional().describe('disconnect (421 4.7.0), defer (451 4.7.1) or reject (550 5.7.1)'),
    message: z.string().min(1).optional().describe('reply text; the retry hint is appended'),
    failMode: z.enum(['open', 'closed']).optional().describe('when Redis cannot answer: let mail through, or 451'),
    listeners: z.array(z.string().min(1)).min(1).optional().describe('only on these listeners'),
    exempt: z.array(cidr()).default([]).describe('clients in these networks are not limited by this rule'),
    ipv4Prefix: z.number().int().min(8).max(32).default(24).describe('key network: IPv4 prefix length'),
    ipv6Prefix: z.number().int().min(16).max(128).default(64).describe('key network: IPv6 prefix length'),
  })
  .transform((rule, ctx) => {
    if (SESSION_COUNTS.includes(rule.count) && !SESSION_KEY_KINDS.includes(rule.key)) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: `${rule.count} can be counted per ${SESSION_KEY_KINDS.join(', ')}; not per ${rule.key}`,
        input: rule.key,
      });
    }
    if (rule.count === 'concurrent' && rule.window !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['window'], message: 'concurrent counts connections open at once and takes no window', input: rule.window });
    }
    if (rule.count !== 'concurrent' && (rule.window === undefined || rule.window <= 0)) {
      ctx.addIssue({ code: 'custom', path: ['window'], message: `a ${rule.count} rule needs a window like 1m, 1h or 1d`, input: rule.window });
    }
    const limit = rule.count === 'bytes' ? parseSize(rule.limit) : rule.limit;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['limit'],
        message: rule.count === 'bytes' ? 'expected a size like 100MiB or a number of bytes' : 'expected a whole number of at least 1',
        input: rule.limit,
      });
      return z.NEVER;
    }
    return {
      ...rule,
      name: rule.name ?? `${rule.count}-per-${rule.key}`,
      limit,
      action: rule.action ?? DEFAULT_ACTION[rule.count],
    };
  });

export type RuleConfig = z.output<typeof ruleSchema>;

export const rulesSchema = z
  .array(ruleSchema)
  .min(1)
  .superRefine((rules, ctx) => {
    const seen = new Map<string, number>();
    rules.forEach((rule, index) => {
      const first = seen.get(rule.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `two rules are named "${rule.name}" (also rules[${first}]); give each its own name`,
          input: rule.name,
        });
      }
      seen.set(rule.name, index);
    });
  });

/** A rule as the enforcer uses it: the config, its fail mode resolved and its rate (none for concurrent). */
export interface Rule extends Omit<RuleConfig, 'failMode' | 'window'> {
  readonly failMode: FailMode;
  readonly rate?: Rate;
  readonly windowMs?: number;
}

export function compileRule(config: RuleConfig, defaultFailMode: FailMode): Rule {
  const { window, failMode, ...rest } = config;
  return {
    ...rest,
    failMode: failMode ?? defaultFailMode,
    windowMs: window,
    rate: window === undefined ? undefined : { limit: config.limit, windowMs: window },
  };
}

export function isRecipientKey(kind: KeyKind): boolean {
  return RECIPIENT_KEY_KINDS.includes(kind);
}
