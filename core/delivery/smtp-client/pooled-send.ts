import type { QueuedRecipient } from '../../queue/contract.js';
import type { Delivery, RecipientResult } from '../outbound.js';
import type { ConnectionPool } from './connection-pool.js';
import { DeliveryFailure } from './delivery-failure.js';
import { limitsOf } from './pool-options.js';
import type { SmtpSession } from './smtp-session.js';

/**
 * What every SMTP/LMTP delivery target does with a group: a session for
 * `key` from the pool (an idle one, or a new one from `open`), one
 * transaction, the session back to the pool. A DeliveryFailure from `open`
 * (no server reachable, login refused, a policy that forbids sending)
 * decides every recipient at once; anything else is a bug and is thrown,
 * which defers the group.
 */
export async function sendPooled(
  pool: ConnectionPool<SmtpSession>,
  key: string,
  open: () => Promise<SmtpSession>,
  delivery: Delivery,
  recipients: readonly QueuedRecipient[] = delivery.recipients,
): Promise<RecipientResult[]> {
  const limits = limitsOf(delivery);
  let session: SmtpSession;
  try {
    session = await pool.acquire(key, open, limits, delivery.signal);
  } catch (error) {
    if (!(error instanceof DeliveryFailure)) throw error;
    delivery.log.info({ destination: key, reply: error.reply.text }, `no session with ${key}: ${error.reply.text}`);
    return error.resultsFor(recipients.map((r) => r.address));
  }
  const answers = await session.send(delivery, recipients);
  pool.release(key, session, limits);
  return answers;
}
