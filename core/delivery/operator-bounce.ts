import type { Clock } from '../clock.js';
import type { Queue } from '../queue/contract.js';
import type { Bouncer } from './bouncer.js';
import type { OutboundHooks } from './outbound-hooks.js';
import { formatReply, type DeliveryReply } from './outbound.js';

const BOUNCED_BY_OPERATOR: DeliveryReply = { code: 550, enhanced: '5.0.0', text: 'message bounced by the mail system administrator' };

/**
 * `petrel queue bounce ID`: every recipient still open fails now, the sender
 * gets a DSN (by the same rules as any failure) and the message leaves the
 * queue. Goes through claim + settle, so it never races a delivery in flight:
 * a message being delivered right now is refused (try again in a moment).
 */
export async function bounceByOperator(
  id: string,
  deps: { queue: Queue; bouncer: Bouncer; hooks: OutboundHooks; clock: Clock; leaseMs: number },
): Promise<'bounced' | 'not-found' | 'busy'> {
  const { queue, bouncer, hooks, clock } = deps;
  if (!(await queue.inspect(id))) return 'not-found';
  const lease = await queue.claim(id, deps.leaseMs);
  if (!lease) return 'busy';
  try {
    const message = lease.message;
    const open = message.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred');
    const now = clock.now();
    const reports = open.map((r) => ({ address: r.address, reply: BOUNCED_BY_OPERATOR }));
    const suppress = open.length > 0 && (await hooks.bounced({ message, recipients: reports, reason: 'operator' }));
    if (!suppress) {
      await bouncer.report(
        message,
        open.map((r) => ({ address: r.address, orcpt: r.orcpt, action: 'failed' as const, reply: BOUNCED_BY_OPERATOR, lastAttemptAt: now })),
      );
    }
    const outcomes = open.map((r) => ({ address: r.address, status: 'bounced' as const, reply: formatReply(BOUNCED_BY_OPERATOR) }));
    await queue.settle(lease, { outcomes });
    return 'bounced';
  } catch (error) {
    await queue.abandon(lease).catch(() => undefined);
    throw error;
  }
}
