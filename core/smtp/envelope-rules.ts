import { reject, type RejectResult } from '../hooks/results.js';
import type { Address } from '../session.js';

/**
 * What RFC 5321 and RFC 6531 require of MAIL FROM and RCPT TO beyond what
 * smtp-server checks: parameters of extensions we did not offer are refused
 * (it passes any `KEY=VALUE` on), and an address written with non-ASCII
 * characters needs the SMTPUTF8 parameter on the transaction.
 */

/** Extensions a session may or may not have been offered in its EHLO reply. */
export interface OfferedExtensions {
  /** REQUIRETLS (RFC 8689): offered over TLS on a listener that switches it on. */
  readonly requireTls: boolean;
  /** AUTH (RFC 4954), whose MAIL FROM parameter AUTH=<mailbox> comes with it. */
  readonly auth: boolean;
}

/** SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461): always offered. */
const MAIL_PARAMETERS = ['SIZE', 'BODY', 'SMTPUTF8', 'RET', 'ENVID'];
/** NOTIFY and ORCPT (RFC 3461). */
const RCPT_PARAMETERS = ['NOTIFY', 'ORCPT'];

/** The refusal of a MAIL FROM, or undefined when it may go on to the mail hook. */
export function mailRefusal(from: Address, nonAsciiPath: boolean, offered: OfferedExtensions): RejectResult | undefined {
  const known = [...MAIL_PARAMETERS, ...(offered.requireTls ? ['REQUIRETLS'] : []), ...(offered.auth ? ['AUTH'] : [])];
  const unknown = unknownParameter(from, known);
  if (unknown) return reject(555, '5.5.4', `MAIL FROM parameter ${unknown} not recognized or not implemented`);
  if (nonAsciiPath && !smtpUtf8(from)) return nonAsciiRefusal('sender');
  return undefined;
}

/** The refusal of a RCPT TO in the transaction `from` opened, or undefined when it may go on to the rcpt hook. */
export function rcptRefusal(recipient: Address, nonAsciiPath: boolean, from: Address): RejectResult | undefined {
  const unknown = unknownParameter(recipient, RCPT_PARAMETERS);
  if (unknown) return reject(555, '5.5.4', `RCPT TO parameter ${unknown} not recognized or not implemented`);
  if (nonAsciiPath && !smtpUtf8(from)) return nonAsciiRefusal('recipient');
  return undefined;
}

/** RFC 5321 4.1.1.11: a parameter the server does not know is answered 555. */
function unknownParameter(address: Address, known: readonly string[]): string | undefined {
  return Object.keys(address.args).find((key) => !known.includes(key));
}

function smtpUtf8(from: Address): boolean {
  return from.args.SMTPUTF8 === true;
}

/** RFC 6531 3.4: a non-ASCII address in a transaction without SMTPUTF8 is refused with 553 5.6.7. */
function nonAsciiRefusal(which: 'sender' | 'recipient'): RejectResult {
  return reject(553, '5.6.7', `Non-ASCII ${which} address not permitted without the SMTPUTF8 parameter on MAIL FROM`);
}
