import { networkOf, splitAddress } from 'petrel';

/**
 * The greylisting key: client network, sender, recipient. The network
 * rather than the address, because large senders retry from another machine
 * of the same pool; the sender with the parts that change on every attempt
 * removed (BATV tags, sub-addresses), or a retry would look new forever.
 */
export function tripletKey(clientAddress: string, sender: string, recipient: string, ipv4Prefix: number, ipv6Prefix: number): string {
  return `${networkOf(clientAddress, ipv4Prefix, ipv6Prefix)} ${stableSender(sender)} ${recipient.toLowerCase()}`;
}

/** `prvs=1234abcd=alice@example.org` (BATV, RFC draft) and `alice+x@` both become `alice@example.org`. */
export function stableSender(sender: string): string {
  if (sender === '') return '<>';
  const batv = /^(?:prvs|msprvs\d?|btv1)=[^=]+=(.+)$/i.exec(sender);
  const parts = splitAddress(batv ? batv[1] : sender, '+');
  return parts ? `${parts.local}@${parts.domain}` : sender.toLowerCase();
}
