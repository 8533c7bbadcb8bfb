import { addPolicyMark, addRecipient, type Address, changeSender, type IncomingMessage, type Logger, removeRecipient, type Spool, type Transaction } from 'petrel';
import type { Modification } from './milter-replies.js';

export interface ModificationTarget {
  /** How the milter is named in marks and logs: `milter/NAME`. */
  readonly milter: string;
  readonly transaction: Transaction;
  readonly message: IncomingMessage;
  readonly spool: Spool;
  /** The milter negotiated SMFIP_HDR_LEADSPC: its header values carry their own leading space. */
  readonly leadingSpace: boolean;
  readonly log: Logger;
}

/**
 * Applies what one milter asked for at the end of the message, in the order
 * it asked, to the message Petrel is about to queue: header fields, envelope,
 * body, quarantine. Called once per milter per message from the `message`
 * hook, before the queue stores anything, so each change lands exactly once;
 * the next milter sees the message as changed.
 */
export async function applyModifications(modifications: readonly Modification[], target: ModificationTarget): Promise<void> {
  const { message, transaction } = target;
  const body: Buffer[] = [];
  let bodyReplaced = false;
  for (const change of modifications) {
    switch (change.kind) {
      case 'addHeader':
        message.headers.append(change.name, headerValue(change.value, target.leadingSpace));
        break;
      case 'insertHeader':
        message.headers.insert(change.index, change.name, headerValue(change.value, target.leadingSpace));
        break;
      case 'changeHeader': {
        // libmilter counts from 1; an empty value deletes; a field that is not there is added.
        const occurrence = Math.max(1, change.index);
        if (change.value === '') message.headers.replace(change.name, occurrence, undefined);
        else if (!message.headers.replace(change.name, occurrence, headerValue(change.value, target.leadingSpace))) message.headers.append(change.name, headerValue(change.value, target.leadingSpace));
        break;
      }
      case 'changeSender':
        changeSender(transaction, { address: change.address, args: change.args });
        break;
      case 'addRecipient':
        addRecipient(transaction, recipientOf(change.address, change.args));
        break;
      case 'deleteRecipient':
        removeRecipient(transaction, change.address);
        break;
      case 'replaceBody':
        bodyReplaced = true;
        body.push(change.chunk);
        break;
      case 'quarantine':
        addPolicyMark(transaction, 'quarantine', `${target.milter}: ${change.reason}`);
        break;
    }
    target.log.debug({ milter: target.milter, change: change.kind, name: 'name' in change ? change.name : undefined }, 'milter changed the message');
  }
  if (bodyReplaced) await target.spool.replaceBody(message, [crlf(Buffer.concat(body))]);
}

/**
 * Milters fold with LF (Sendmail's internal line end); the message uses CRLF.
 * With SMFIP_HDR_LEADSPC the value brings the space after the colon, which
 * Petrel writes itself.
 */
function headerValue(value: string, leadingSpace: boolean): string {
  const folded = value.replace(/\r?\n/g, '\r\n');
  return leadingSpace && /^[ \t]/.test(folded) ? folded.slice(1) : folded;
}

/** Every line end as CRLF: a replaced body must not bring bare LF or CR into the queue. */
function crlf(body: Buffer): Buffer {
  return Buffer.from(body.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

function recipientOf(address: string, args: Readonly<Record<string, string | true>>): Address {
  const notify = typeof args.NOTIFY === 'string' ? args.NOTIFY.toUpperCase().split(',') : undefined;
  const orcpt = typeof args.ORCPT === 'string' ? args.ORCPT : undefined;
  return { address, args, ...(notify || orcpt ? { dsn: { notify, orcpt } } : {}) };
}
