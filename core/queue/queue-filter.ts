import { stateOf, type QueuedMessage, type QueueFilter } from './contract.js';

/** Whether a message passes an operator's filter (`petrel queue list --state ... --domain ...`); shared by every queue. */
export function matchesFilter(message: QueuedMessage, filter: QueueFilter, now: number): boolean {
  if (filter.state !== undefined && stateOf(message) !== filter.state) return false;
  if (filter.sender !== undefined && message.envelope.from.toLowerCase() !== filter.sender.toLowerCase()) return false;
  if (filter.olderThanMs !== undefined && now - message.receivedAt < filter.olderThanMs) return false;
  if (filter.domain !== undefined) {
    const domain = filter.domain.toLowerCase();
    if (!message.recipients.some((r) => r.address.toLowerCase().endsWith(`@${domain}`))) return false;
  }
  return true;
}
