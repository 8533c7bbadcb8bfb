import type { Address, Transaction } from '../session.js';
import { TransactionState } from './session-state.js';

/**
 * Changes to a transaction's envelope by a content filter (a milter's
 * chgfrom, addrcpt, delrcpt) before the message is queued. Plugins see the
 * transaction read-only; these are the only ways to change it, so every edit
 * goes through one place and the queue stores the envelope as edited.
 * Call them from a `message` handler: the queue takes the envelope as it is
 * when every message handler has run.
 */

/** Replaces the sender (MAIL FROM), with its parameters. */
export function changeSender(transaction: Transaction, from: Address): void {
  stateOf(transaction).from = from;
}

/** Adds a recipient; false when it is there already (compared without case). */
export function addRecipient(transaction: Transaction, recipient: Address): boolean {
  const to = stateOf(transaction).to;
  const key = recipient.address.toLowerCase();
  if (to.some((existing) => existing.address.toLowerCase() === key)) return false;
  to.push(recipient);
  return true;
}

/** Removes a recipient (compared without case); false when it was not there. */
export function removeRecipient(transaction: Transaction, address: string): boolean {
  const to = stateOf(transaction).to;
  const key = address.toLowerCase();
  const at = to.findIndex((existing) => existing.address.toLowerCase() === key);
  if (at < 0) return false;
  to.splice(at, 1);
  return true;
}

function stateOf(transaction: Transaction): TransactionState {
  if (!(transaction instanceof TransactionState)) throw new TypeError('only a transaction Petrel passed to a hook can be edited');
  return transaction;
}
