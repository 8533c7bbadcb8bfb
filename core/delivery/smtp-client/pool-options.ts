import { z } from 'zod';
import { duration } from '../../config/units.js';
import type { Delivery } from '../outbound.js';
import type { PoolLimits } from './connection-pool.js';

/**
 * The `pool:` options block of the SMTP and LMTP delivery targets
 * (relay-mx, relay-smarthost, deliver-lmtp), with each target's defaults.
 */
export function poolOptions(defaults: { maxConnections: number; maxMessagesPerConnection: number; idleTimeout: string }) {
  return z
    .strictObject({
      maxConnections: z
        .number()
        .int()
        .min(1)
        .default(defaults.maxConnections)
        .describe('open connections per destination at most (busy and idle); further deliveries wait for one'),
      maxMessagesPerConnection: z
        .number()
        .int()
        .min(1)
        .default(defaults.maxMessagesPerConnection)
        .describe('a connection is closed after this many messages and a new one opened'),
      idleTimeout: duration()
        .prefault(defaults.idleTimeout)
        .describe('an unused connection is closed after this long (kept open for the next message to the same destination)'),
    })
    .prefault({});
}

/**
 * The pool limits a delivery asks for, if the scheduler's outbound shaping
 * gave it any (`delivery.limits`, per destination). When present they win
 * over the target's own `pool:` options; fields left out keep those.
 */
export function limitsOf(delivery: Delivery): Partial<PoolLimits> {
  const limits = delivery.limits;
  if (!limits) return {};
  return {
    ...(limits.maxConnections !== undefined ? { maxConnections: limits.maxConnections } : {}),
    ...(limits.messagesPerConnection !== undefined ? { maxMessagesPerConnection: limits.messagesPerConnection } : {}),
  };
}
