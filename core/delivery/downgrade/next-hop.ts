import type { QueuedRecipient } from '../../queue/contract.js';
import type { Delivery, DeliveryReply, OpenOptions } from '../outbound.js';
import { readHeaderBlock } from '../outgoing-content.js';

/** How one transaction of a message may go to a next hop: as stored or converted (the `open` options), or not at all. */
export type HopFit = { readonly open: OpenOptions } | { readonly refusal: DeliveryReply };

/**
 * What the extensions a next hop offers (EHLO/LHLO) mean for a message,
 * decided per connection since every hop may differ:
 *
 * - RFC 6531 3.2: a message that needs SMTPUTF8 (the sender asked for it,
 *   and an address or a header field is not ASCII) never goes to a server
 *   without it: `553 5.6.7`, returned to the sender. One that asked for it
 *   but is ASCII after all goes as it is.
 * - RFC 6152 3: an 8-bit message goes to a server without 8BITMIME only
 *   converted to 7-bit (`Delivery.open({ sevenBit: true })`, which bounces
 *   it with `5.6.3` when it cannot be converted).
 */
export async function fitToNextHop(
  delivery: Delivery,
  recipients: readonly QueuedRecipient[],
  offers: (extension: string) => boolean,
  remoteMta: string,
): Promise<HopFit> {
  const { envelope } = delivery.message;
  if (envelope.smtpUtf8 && !offers('SMTPUTF8') && (await needsSmtpUtf8(delivery, recipients))) {
    return { refusal: { code: 553, enhanced: '5.6.7', text: `SMTPUTF8 is required, but ${remoteMta} does not offer it`, remoteMta } };
  }
  return { open: envelope.bodyType !== '7bit' && !offers('8BITMIME') ? { sevenBit: true } : {} };
}

async function needsSmtpUtf8(delivery: Delivery, recipients: readonly QueuedRecipient[]): Promise<boolean> {
  const addresses = [delivery.message.envelope.from, ...recipients.map((r) => r.address)];
  if (addresses.some((address) => /[^\x00-\x7f]/.test(address))) return true;
  const header = await readHeaderBlock(await delivery.open());
  return header.some((byte) => byte >= 0x80);
}
