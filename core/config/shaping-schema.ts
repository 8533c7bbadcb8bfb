import { z } from 'zod';
import { duration, regularExpression } from './units.js';

/**
 * The schema of `delivery.shaping`: how fast Petrel sends to each
 * destination. A `default` profile and a list of `rules`, each matching
 * destinations by name; a rule's unset keys come from the default.
 * docs/rate-limiting.md ("Outbound shaping") explains the model.
 */

/**
 * What a 4xx reply must say to count as "slow down" (421 always does). Each is
 * a case-insensitive regular expression tried on the enhanced code and text.
 * Greylisting ("try again later") and a locked or full mailbox ("mailbox
 * busy", "over quota") must not match: they are not about load.
 */
export const DEFAULT_THROTTLE_REPLIES = [
  'too many',
  '\\brate\\b',
  'throttl',
  '\\b(server|system|host|too) busy\\b',
  '\\bvolume\\b',
  'slow down',
  'connection limit',
];

/** `example.com` (that name only) or `*.example.com` (every name under it). */
const destinationPattern = z
  .string()
  .regex(/^(\*\.)?[^\s@*:/\\[\]]+$/, 'a domain or host name like example.com, or *.example.com for every name under it');

const describe = {
  maxConnections: 'deliveries at once to one destination on this node; each delivery is one connection (default: concurrency.perDestination)',
  messagesPerConnection: 'told to delivery targets that reuse connections: close one after this many messages',
  messagesPerMinute: 'a budget of this many messages (SMTP transactions) a minute per destination, refilled evenly',
  messagesPerHour: 'a budget of this many messages an hour per destination, refilled evenly',
  burst: 'at most this many messages back to back; the rest are spaced evenly (unset: a quiet destination may get a whole budget at once)',
  pause: 'after a "slow down" reply (421, or a 4xx saying too many/rate/busy), start nothing new to the destination for this long',
  maxPause: 'pauses double while "slow down" replies keep coming, up to this',
  recoverAfter: 'after a back-off, one more connection is allowed after each this many successful deliveries',
} as const;

const limitFields = {
  maxConnections: z.number().int().min(1).optional().describe(describe.maxConnections),
  messagesPerConnection: z.number().int().min(1).optional().describe(describe.messagesPerConnection),
  messagesPerMinute: z.number().int().min(1).optional().describe(describe.messagesPerMinute),
  messagesPerHour: z.number().int().min(1).optional().describe(describe.messagesPerHour),
  burst: z.number().int().min(1).optional().describe(describe.burst),
};

const backoffDefaults = z
  .strictObject({
    pause: duration().prefault('1m').describe(describe.pause),
    maxPause: duration().prefault('15m').describe(describe.maxPause),
    recoverAfter: z.number().int().min(1).default(10).describe(describe.recoverAfter),
  })
  .prefault({});

const backoffOverride = z.strictObject({
  pause: duration().optional().describe(describe.pause),
  maxPause: duration().optional().describe(describe.maxPause),
  recoverAfter: z.number().int().min(1).optional().describe(describe.recoverAfter),
});

const shapingRule = z.strictObject({
  name: z.string().min(1).optional().describe('shown in logs; defaults to the first pattern'),
  match: z
    .union([destinationPattern, z.array(destinationPattern).min(1)])
    .describe('destination domains or MX/smarthost names: example.com, or *.example.com for every name under it'),
  ...limitFields,
  backoff: backoffOverride.optional().describe('back-off settings for these destinations; unset keys come from default.backoff'),
});

export const shapingSchema = z
  .strictObject({
    store: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe('where message rates are counted: memory (per node) or redis (shared by every node using the same Redis); connections are always per node'),
    keyPrefix: z.string().default('shaping:').describe('redis: prefix of the rate keys, after redis.keyPrefix'),
    maxWait: duration()
      .prefault('30s')
      .describe('longest a leased message waits in memory for its destination; a longer wait gives it back to the queue, due when its turn is expected'),
    throttleReplies: z
      .array(regularExpression('i'))
      .default(DEFAULT_THROTTLE_REPLIES)
      .describe('a 4xx reply matching one of these (case-insensitive) means "slow down"; 421 always does'),
    default: z
      .strictObject({ ...limitFields, backoff: backoffDefaults })
      .prefault({})
      .describe('limits of every destination no rule matches, and of the keys a rule leaves out'),
    rules: z.array(shapingRule).default([]).describe('per-destination limits; the first rule whose pattern matches wins'),
  })
  .prefault({});

export type ShapingConfig = z.output<typeof shapingSchema>;
export type ShapingRuleConfig = ShapingConfig['rules'][number];
