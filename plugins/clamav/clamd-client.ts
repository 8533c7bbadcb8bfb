import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
import { ScanFailure } from 'petrel';

/** Where clamd listens: a unix socket (LocalSocket) or TCP (TCPSocket/TCPAddr). */
export type ClamdAddress = { readonly socket: string } | { readonly host: string; readonly port: number };

/** clamd's verdict on one stream. */
export type ClamdVerdict =
  | { readonly kind: 'clean' }
  | { readonly kind: 'infected'; readonly signature: string }
  /** The stream passed clamd's StreamMaxLength: clamd stopped reading and judged nothing. */
  | { readonly kind: 'too-large' };

/**
 * Chunk size for INSTREAM. clamd refuses a stream whose total passes
 * StreamMaxLength (25 MB by default, often set to a few MB) and reads each
 * chunk into a buffer of its own; 64 KiB chunks stay far below any setting
 * an operator would make and keep our memory flat for big messages.
 */
export const CHUNK_SIZE = 64 * 1024;
/** INSTREAM answers are one short line; more than this is not clamd. */
const MAX_ANSWER = 4096;

/**
 * One `zINSTREAM` exchange over a fresh connection: the command, then the
 * message as chunks each prefixed by its length (4 bytes, big-endian), then a
 * zero-length chunk. clamd answers one NUL-terminated line and closes:
 *
 *   stream: OK
 *   stream: Eicar-Test-Signature FOUND
 *   INSTREAM size limit exceeded. ERROR     (it may close while we still write)
 *
 * `signal` ends the exchange (the caller's timeout). Anything else, or no
 * NUL before the connection closes, is a ScanFailure, never a verdict.
 */
export async function scanWithClamd(address: ClamdAddress, content: Readable, signal: AbortSignal): Promise<ClamdVerdict> {
  return parseClamdAnswer(await exchange(address, content, signal));
}

/** Reads one INSTREAM answer line (without its NUL); throws ScanFailure for anything else. */
export function parseClamdAnswer(line: string): ClamdVerdict {
  if (line === 'stream: OK') return { kind: 'clean' };
  const found = /^stream: (\S.{0,199}) FOUND$/.exec(line);
  if (found) return { kind: 'infected', signature: found[1] };
  if (/^INSTREAM size limit exceeded\.? ERROR$/.test(line)) return { kind: 'too-large' };
  if (/ ERROR$/.test(line)) throw new ScanFailure(`clamd could not scan the message: ${printable(line)}`);
  throw new ScanFailure(`clamd answered something that is not an INSTREAM result: ${printable(line)}`);
}

function exchange(address: ClamdAddress, content: Readable, signal: AbortSignal): Promise<string> {
  const where = 'socket' in address ? address.socket : `${address.host}:${address.port}`;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      content.destroy();
      reject(abortReason(signal));
      return;
    }
    const socket: Socket = 'socket' in address ? connect({ path: address.socket }) : connect({ host: address.host, port: address.port });
    let answer = '';
    let settled = false;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      content.destroy();
      socket.destroy();
      if (error) reject(error);
      else resolve(answer.slice(0, answer.indexOf('\0')));
    };
    const onAbort = () => finish(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });

    socket.once('connect', () => {
      sendStream(socket, content).catch((error: Error) => {
        // A socket error says more (and may come with the answer); reading the message is ours.
        if (!socket.destroyed) finish(new ScanFailure(`the message could not be read: ${error.message}`));
      });
    });
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\0')) finish(undefined);
      else if (answer.length > MAX_ANSWER) finish(new ScanFailure(`clamd's answer is longer than ${MAX_ANSWER} bytes`));
    });
    socket.once('end', () => finish(new ScanFailure(answer === '' ? 'clamd closed the connection without answering' : 'clamd closed the connection in the middle of its answer')));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const closedWhileSending = error.code === 'EPIPE' || error.code === 'ECONNRESET';
      // Rarely the answer is lost with the connection; StreamMaxLength is then the likely cause.
      finish(new ScanFailure(`clamd at ${where}: ${error.code ?? error.message}${closedWhileSending ? ' (closed while the message was sent: larger than its StreamMaxLength?)' : ''}`));
    });
  });
}

/** The command, the message in length-prefixed chunks, the end marker; waits when the socket's buffer is full. */
async function sendStream(socket: Socket, content: Readable): Promise<void> {
  const write = async (bytes: Buffer) => {
    if (socket.write(bytes) || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done).off('close', done);
        resolve();
      };
      socket.on('drain', done).on('close', done);
    });
  };
  await write(Buffer.from('zINSTREAM\0', 'latin1'));
  for await (const piece of content) {
    const bytes = piece as Buffer;
    for (let offset = 0; offset < bytes.length && !socket.destroyed; offset += CHUNK_SIZE) {
      const chunk = bytes.subarray(offset, offset + CHUNK_SIZE);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(chunk.length);
      await write(Buffer.concat([length, chunk]));
      // clamd answers and closes as soon as the stream passes its StreamMaxLength; a turn of
      // the event loop between chunks reads that answer before a write into the closed
      // connection fails and destroys the socket, answer unread.
      await setImmediate();
    }
    if (socket.destroyed) return;
  }
  await write(Buffer.alloc(4));
}

/** The caller's reason (its timeout says how long it waited), or a plain one. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new ScanFailure('the scan was abandoned');
}

function printable(text: string): string {
  const line = text.replace(/[^\x20-\x7e]/g, '?');
  return line.length > 80 ? `${line.slice(0, 80)}...` : line;
}
