import { readHeaderBlock } from '../delivery/outgoing-content.js';
import type { Delivery } from '../delivery/outbound.js';
import type { IncomingMessage, Transaction } from '../session.js';
import { MessageHeaders } from '../spool/message-headers.js';

/** The header a `tag` action adds, one per finding. */
export const WARNING_HEADER = 'X-Petrel-Warning';
/** The header a `quarantine` action adds; local delivery is to file such messages as junk (the Junk folder). */
export const QUARANTINE_HEADER = 'X-Petrel-Quarantine';

const NOTE = 'petrel:policy-marks';

interface Marks {
  /** Incoming copies of our headers were removed (done once per message). */
  stripped: boolean;
  pending: { header: string; text: string }[];
  quarantined: boolean;
}

/**
 * Findings that mark a message instead of refusing it. Checks decide at
 * whatever hook they run (DNSBL at MAIL, SPF at MAIL, DMARC at the message),
 * and the headers can only be written once the message is there, so marks
 * wait in the transaction until a plugin's message handler calls
 * `writePolicyMarks`. Every policy plugin that can mark calls it from its
 * message handler; whichever runs first also removes copies of these headers
 * that came with the message, so a sender can neither forge nor pre-empt them.
 *
 *   addPolicyMark(transaction, 'tag', 'spf=softfail (...)')
 */
export function addPolicyMark(transaction: Transaction, action: 'tag' | 'quarantine', text: string): void {
  const marks = marksOf(transaction);
  marks.pending.push({ header: action === 'tag' ? WARNING_HEADER : QUARANTINE_HEADER, text });
  if (action === 'quarantine') marks.quarantined = true;
}

/** Removes forged copies (first call only) and writes the marks recorded so far. */
export function writePolicyMarks(transaction: Transaction, message: IncomingMessage): void {
  const marks = marksOf(transaction);
  if (!marks.stripped) {
    message.headers.remove(WARNING_HEADER);
    message.headers.remove(QUARANTINE_HEADER);
    marks.stripped = true;
  }
  for (const mark of marks.pending) message.headers.prepend(mark.header, mark.text);
  marks.pending = [];
}

/**
 * Why a queued message was quarantined, for the delivery side (local
 * delivery files it as junk); undefined when it was not. The mark travels in
 * the message's header because only the message survives the queue; the
 * inbound side wrote it and removed forged copies (writePolicyMarks). Reads
 * the header block only.
 */
export async function quarantineOf(delivery: Delivery): Promise<string | undefined> {
  const headers = new MessageHeaders(await readHeaderBlock(await delivery.open()));
  const reasons = headers.get(QUARANTINE_HEADER);
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

/** Whether some check asked for this message to be quarantined (inbound, before it is queued). */
export function isQuarantined(transaction: Transaction): boolean {
  return marksOf(transaction).quarantined;
}

function marksOf(transaction: Transaction): Marks {
  let marks = transaction.notes.get(NOTE) as Marks | undefined;
  if (!marks) {
    marks = { stripped: false, pending: [], quarantined: false };
    transaction.notes.set(NOTE, marks);
  }
  return marks;
}
