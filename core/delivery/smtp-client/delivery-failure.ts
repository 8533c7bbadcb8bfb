import { formatReply, results, type DeliveryReply, type RecipientResult } from '../outbound.js';

/**
 * A failure that decides every recipient of a delivery at once: no MX could
 * be reached, the domain publishes a null MX, a TLS policy forbids sending.
 * Delivery targets throw it while opening a connection and turn it into one
 * result per recipient with `resultsFor`; the reply's class decides bounced
 * (5xx) or deferred (anything else).
 */
export class DeliveryFailure extends Error {
  constructor(readonly reply: DeliveryReply) {
    super(formatReply(reply));
    this.name = 'DeliveryFailure';
  }

  get permanent(): boolean {
    return this.reply.code >= 500 && this.reply.code < 600;
  }

  resultsFor(addresses: readonly string[]): RecipientResult[] {
    return addresses.map((address) => results.fromReply(address, this.reply));
  }
}
