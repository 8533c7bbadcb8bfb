import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ScanFailure } from 'petrel';

/** Where spamd listens. */
export interface SpamdAddress {
  readonly host: string;
  readonly port: number;
}

/** What spamd said about one message (the `Spam:` header and the SYMBOLS body). */
export interface SpamdVerdict {
  /** spamd's own judgement: score >= its required_score. */
  readonly spam: boolean;
  readonly score: number;
  /** spamd's required_score for the user it checked as. */
  readonly required: number;
  /** Names of the rules that hit, in spamd's order. */
  readonly symbols: readonly string[];
}

/** The message as spamd must get it: the protocol wants its length before the bytes. */
export interface SpamdMessage {
  readonly length: number;
  readonly content: Readable;
}

/** spamd rejects request headers it cannot parse; a User name goes in only when it is one safe token. */
export const SAFE_USER = /^[A-Za-z0-9._@+-]{1,128}$/;
/** An answer bigger than this is not spamd's (SYMBOLS answers are a few hundred bytes). */
const MAX_ANSWER = 64 * 1024;

/**
 * One SYMBOLS request (SPAMC/1.5) over a fresh connection: the request
 * headers with Content-length (and User, whose preferences spamd applies
 * when it reads per-user configuration), the message, then a half-close, as
 * spamc does. spamd answers
 *
 *   SPAMD/1.1 0 EX_OK
 *   Content-length: 43
 *   Spam: True ; 1003.3 / 5.0
 *
 *   GTUBE,MISSING_DATE,MISSING_MID,NO_RECEIVED
 *
 * and closes. `signal` ends the exchange (the caller's timeout); anything
 * short of a complete, well-formed answer is a ScanFailure, never a verdict.
 */
export async function checkWithSpamd(address: SpamdAddress, message: SpamdMessage, options: { user?: string; signal: AbortSignal }): Promise<SpamdVerdict> {
  const head = [`SYMBOLS SPAMC/1.5`, `Content-length: ${message.length}`];
  if (options.user !== undefined && SAFE_USER.test(options.user)) head.push(`User: ${options.user}`);
  const answer = await exchange(address, `${head.join('\r\n')}\r\n\r\n`, message.content, options.signal);
  return parseSpamdAnswer(answer);
}

/** Reads a complete SPAMD/1.x answer to SYMBOLS; throws ScanFailure for anything else. */
export function parseSpamdAnswer(answer: Buffer): SpamdVerdict {
  const text = answer.toString('latin1');
  if (text === '') throw new ScanFailure('spamd closed the connection without answering');
  const headEnd = text.indexOf('\r\n\r\n');
  const statusEnd = text.indexOf('\r\n');
  const statusLine = text.slice(0, statusEnd < 0 ? Math.min(text.length, 80) : statusEnd);
  const status = /^SPAMD\/1\.\d+ (\d+) (.*)$/.exec(statusLine);
  if (!status) throw new ScanFailure(`spamd answered something that is not SPAMD/1.x: ${printable(statusLine)}`);
  if (status[1] !== '0') throw new ScanFailure(`spamd refused the request: ${printable(`${status[1]} ${status[2]}`)}`);
  if (headEnd < 0) throw new ScanFailure('spamd closed the connection in the middle of its answer');

  const headers = new Map<string, string>();
  for (const line of text.slice(statusEnd + 2, headEnd).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const spamHeader = headers.get('spam');
  const spam = spamHeader === undefined ? undefined : /^(True|False|Yes|No) ; (-?\d+(?:\.\d+)?) \/ (-?\d+(?:\.\d+)?)$/i.exec(spamHeader);
  if (!spam) throw new ScanFailure(`spamd's answer has no readable Spam header: ${printable(spamHeader ?? '(none)')}`);

  const body = text.slice(headEnd + 4);
  const declared = headers.get('content-length');
  if (declared !== undefined) {
    if (!/^\d+$/.test(declared)) throw new ScanFailure(`spamd's answer has a bad Content-length: ${printable(declared)}`);
    // The body is counted in bytes; latin1 keeps one character per byte.
    if (body.length < Number(declared)) throw new ScanFailure('spamd closed the connection in the middle of its answer');
  }
  const symbols = body
    .trim()
    .split(',')
    .map((symbol) => symbol.trim())
    .filter((symbol) => symbol !== '');
  if (symbols.some((symbol) => !/^[A-Za-z0-9_]+$/.test(symbol))) throw new ScanFailure(`spamd's symbol list is unreadable: ${printable(body)}`);
  return {
    spam: /^(True|Yes)$/i.test(spam[1]),
    score: Number(spam[2]),
    required: Number(spam[3]),
    symbols,
  };
}

/** Sends the request head and the message, half-closes, and collects everything spamd says until it closes. */
function exchange(address: SpamdAddress, head: string, content: Readable, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      content.destroy();
      reject(abortReason(signal));
      return;
    }
    const socket: Socket = connect({ host: address.host, port: address.port });
    const received: Buffer[] = [];
    let receivedBytes = 0;
    let settled = false;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      content.unpipe(socket);
      content.destroy();
      socket.destroy();
      if (error) reject(error);
      else resolve(Buffer.concat(received));
    };
    const onAbort = () => finish(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });

    socket.once('connect', () => {
      socket.write(head);
      content.pipe(socket);
    });
    content.once('error', (error) => finish(new ScanFailure(`the message could not be read: ${error.message}`)));
    socket.on('data', (chunk: Buffer) => {
      receivedBytes += chunk.length;
      if (receivedBytes > MAX_ANSWER) finish(new ScanFailure(`spamd's answer is longer than ${MAX_ANSWER} bytes`));
      else received.push(chunk);
    });
    socket.once('end', () => finish(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // spamd may close as soon as it has answered (a refusal) while we still write: the answer counts.
      if (receivedBytes > 0 && (error.code === 'EPIPE' || error.code === 'ECONNRESET')) finish(undefined);
      else finish(new ScanFailure(`spamd at ${address.host}:${address.port}: ${error.code ?? error.message}`));
    });
  });
}

/** The caller's reason (its timeout says how long it waited), or a plain one. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new ScanFailure('the check was abandoned');
}

function printable(text: string): string {
  const line = text.replace(/[^\x20-\x7e]/g, '?');
  return line.length > 80 ? `${line.slice(0, 80)}...` : line;
}
