import { stateOf, type QueuedMessage, type QueuedRecipient, type QueueState, type RecipientOutcome } from './contract.js';

/**
 * What every queue does on settle: each recipient with an outcome takes its
 * status, reply and time and counts one more attempt; finished recipients
 * (delivered, bounced) never change again. `open` says whether any
 * recipient still waits for delivery (else the message leaves the queue).
 */
export function applyOutcomes(
  recipients: readonly QueuedRecipient[],
  outcomes: readonly RecipientOutcome[],
  now: number,
): { recipients: QueuedRecipient[]; open: boolean } {
  const byAddress = new Map(outcomes.map((o) => [o.address, o]));
  const updated = recipients.map((recipient): QueuedRecipient => {
    const outcome = byAddress.get(recipient.address);
    if (!outcome || recipient.status === 'delivered' || recipient.status === 'bounced') return recipient;
    return {
      ...recipient,
      status: outcome.status,
      attempts: recipient.attempts + 1,
      lastReply: outcome.reply ?? recipient.lastReply,
      updatedAt: now,
    };
  });
  return { recipients: updated, open: updated.some((r) => r.status === 'pending' || r.status === 'deferred') };
}

/** Counts messages by state, for `Queue.stats()`. */
export function countByState(messages: readonly QueuedMessage[]): Record<QueueState, number> {
  const counts: Record<QueueState, number> = { active: 0, deferred: 0, held: 0 };
  for (const message of messages) counts[stateOf(message)]++;
  return counts;
}
