import { DataCursor, type Packet, ProtocolError, Reply } from './protocol.js';

/** How a milter answered one step. */
export type Verdict =
  | { readonly kind: 'continue' | 'accept' | 'reject' | 'tempfail' | 'discard' | 'skip' }
  /** A reply of the milter's own (SMFIR_REPLYCODE), checked: 4xx or 5xx, enhanced code of the same class. */
  | { readonly kind: 'reply'; readonly code: number; readonly enhanced?: string; readonly text: string };

/** A change to the message a milter asks for at the end of the message. */
export type Modification =
  | { readonly kind: 'addHeader'; readonly name: string; readonly value: string }
  | { readonly kind: 'insertHeader'; readonly index: number; readonly name: string; readonly value: string }
  /** `value` '' removes the `index`-th field of that name (1 = first). */
  | { readonly kind: 'changeHeader'; readonly index: number; readonly name: string; readonly value: string }
  | { readonly kind: 'changeSender'; readonly address: string; readonly args: Readonly<Record<string, string | true>> }
  | { readonly kind: 'addRecipient'; readonly address: string; readonly args: Readonly<Record<string, string | true>> }
  | { readonly kind: 'deleteRecipient'; readonly address: string }
  | { readonly kind: 'replaceBody'; readonly chunk: Buffer }
  | { readonly kind: 'quarantine'; readonly reason: string };

export type MilterAnswer =
  | { readonly type: 'verdict'; readonly verdict: Verdict }
  | { readonly type: 'modification'; readonly modification: Modification }
  | { readonly type: 'progress' };

const SIMPLE: Record<string, Verdict['kind']> = {
  [Reply.continue]: 'continue',
  [Reply.accept]: 'accept',
  [Reply.reject]: 'reject',
  [Reply.tempfail]: 'tempfail',
  [Reply.discard]: 'discard',
  [Reply.skip]: 'skip',
};

/**
 * Reads one packet from a milter. Throws ProtocolError for anything that is
 * not a well-formed answer: an unknown letter, a field without its NUL, a
 * reply code that is not 4xx/5xx (a 2xx "replycode" would accept mail the
 * milter meant to judge), an enhanced code of another class.
 */
export function parseAnswer(packet: Packet): MilterAnswer {
  const simple = SIMPLE[packet.code];
  // As Postfix does: a verdict followed by bytes it never carries is not a verdict to trust.
  if ((simple || packet.code === Reply.progress) && packet.data.length > 0) throw new ProtocolError(`sent "${packet.code}" followed by ${packet.data.length} bytes of data`);
  if (simple) return { type: 'verdict', verdict: { kind: simple } as Verdict };
  const cursor = new DataCursor(packet.data);
  const modification = (value: Modification): MilterAnswer => ({ type: 'modification', modification: value });
  switch (packet.code) {
    case Reply.replyCode:
      return { type: 'verdict', verdict: parseReplyCode(cursor.string()) };
    case Reply.progress:
      return { type: 'progress' };
    case Reply.addHeader:
      return modification({ kind: 'addHeader', name: headerName(cursor.string()), value: cursor.string() });
    case Reply.insertHeader: {
      const index = cursor.uint32();
      return modification({ kind: 'insertHeader', index, name: headerName(cursor.string()), value: cursor.string() });
    }
    case Reply.changeHeader: {
      const index = cursor.uint32();
      return modification({ kind: 'changeHeader', index, name: headerName(cursor.string()), value: cursor.string() });
    }
    case Reply.changeSender: {
      const address = mailbox(cursor.string());
      return modification({ kind: 'changeSender', address, args: cursor.remaining > 0 ? esmtpArgs(cursor.string()) : {} });
    }
    case Reply.addRecipient:
      return modification({ kind: 'addRecipient', address: mailbox(cursor.string()), args: {} });
    case Reply.addRecipientWithArgs: {
      const address = mailbox(cursor.string());
      return modification({ kind: 'addRecipient', address, args: cursor.remaining > 0 ? esmtpArgs(cursor.string()) : {} });
    }
    case Reply.deleteRecipient:
      return modification({ kind: 'deleteRecipient', address: mailbox(cursor.string()) });
    case Reply.replaceBody:
      return modification({ kind: 'replaceBody', chunk: cursor.rest() });
    case Reply.quarantine:
      return modification({ kind: 'quarantine', reason: cursor.string() });
    case Reply.shutdown:
      throw new ProtocolError('shut down (SMFIR_SHUTDOWN)');
    case Reply.connectionFailure:
      throw new ProtocolError('reported a connection failure (SMFIR_CONN_FAIL)');
    default:
      throw new ProtocolError(`sent an unknown answer "${/^[\x21-\x7e]$/.test(packet.code) ? packet.code : `0x${packet.code.charCodeAt(0).toString(16)}`}"`);
  }
}

const REPLY_LINE = /^([2-5]\d\d)([ -])(?:([245]\.\d{1,3}\.\d{1,3})(?: |$))?(.*)$/s;

/** `550 5.7.1 text`, possibly several lines (`550-5.7.1 one\r\n550 5.7.1 two`), as smfi_setmlreply writes it. */
export function parseReplyCode(value: string): Verdict {
  const lines = value.replace(/\r?\n$/, '').split(/\r?\n/);
  const parsed = lines.map((line) => REPLY_LINE.exec(line));
  const first = parsed[0];
  if (!first || parsed.some((match) => match === null || match[1] !== first[1])) throw new ProtocolError(`sent a malformed reply code ${JSON.stringify(value.slice(0, 80))}`);
  const code = Number(first[1]);
  if (code < 400) throw new ProtocolError(`sent the reply code ${code}: a milter may only refuse (4xx or 5xx)`);
  const enhanced = first[3];
  if (enhanced !== undefined && enhanced[0] !== first[1][0]) throw new ProtocolError(`sent the enhanced code ${enhanced} with reply code ${code}`);
  const text = parsed.map((match) => match![4].trim()).filter(Boolean).join(' ');
  return { kind: 'reply', code, enhanced, text };
}

function headerName(name: string): string {
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new ProtocolError(`sent a header name ${JSON.stringify(name.slice(0, 80))} that is not one`);
  return name;
}

function mailbox(value: string): string {
  const address = value.trim().replace(/^<(.*)>$/, '$1');
  if (/[\s<>\0]/.test(address)) throw new ProtocolError(`sent an address ${JSON.stringify(value.slice(0, 80))} that is not one`);
  return address;
}

/** `NOTIFY=NEVER ORCPT=rfc822;a@b` as MAIL/RCPT parameters (keys upper case, bare keywords true). */
function esmtpArgs(value: string): Record<string, string | true> {
  const args: Record<string, string | true> = {};
  for (const word of value.split(/\s+/).filter(Boolean)) {
    const equals = word.indexOf('=');
    if (equals === 0) throw new ProtocolError(`sent an ESMTP parameter ${JSON.stringify(word.slice(0, 80))}`);
    if (equals < 0) args[word.toUpperCase()] = true;
    else args[word.slice(0, equals).toUpperCase()] = word.slice(equals + 1);
  }
  return args;
}
