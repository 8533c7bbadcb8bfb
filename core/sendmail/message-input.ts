import { createInterface } from 'node:readline';
import { Transform, type Readable } from 'node:stream';
import { EXIT } from '../cli/exit-codes.js';
import { SendmailFailure } from './sendmail-failure.js';

export interface MessageInputOptions {
  /** A line with a single "." ends the message (sendmail without -i). */
  readonly dotEndsInput: boolean;
  /** limits.messageSize: the stored message (headers as edited, body) may not be larger. */
  readonly maxBytes: number;
  /** limits.headerSize */
  readonly maxHeaderBytes: number;
  /** Gets the header block as read (CRLF line ends, with its empty line) and gives back the one to store. */
  readonly headers: (block: Buffer) => Buffer;
  /** Takes the message's bytes in order: the edited header block, then the body. */
  readonly write: (chunk: Buffer) => Promise<void>;
}

export interface MessageInputResult {
  /** Bytes written. */
  readonly size: number;
  /** Some byte of the header block is not ASCII (UTF-8 headers: SMTPUTF8). */
  readonly eightBitHeaders: boolean;
  /** Some byte of the message is not ASCII (8BITMIME). */
  readonly eightBit: boolean;
}

const CRLF = Buffer.from('\r\n');
const WRITE_BATCH = 64 * 1024;
/** A header field line: a name of printable characters but the colon, then a colon (RFC 5322 2.2). */
const FIELD = /^[\x21-\x39\x3b-\x7e]+:/;

/**
 * Reads a message the way sendmail does and writes it out the way SMTP
 * carries it: every line ending (LF, CRLF, or a lone CR, which SMTP forbids
 * and Petrel refuses from the network) becomes CRLF; a leading Unix mbox
 * `From ` line is dropped; without -i, a line with a single "." ends the
 * input (dots are otherwise kept as they are: there is no dot-stuffing on
 * standard input). The header block is handed to `headers` for editing before
 * anything is written; a line in it that is neither a field nor a
 * continuation starts the body, with the empty line put in before it.
 *
 * Bytes are read as latin1 so that any 8-bit content goes through unchanged.
 */
export async function readMessage(input: Readable, options: MessageInputOptions): Promise<MessageInputResult> {
  // readline holds a whole line in memory: stop reading once the input is clearly too large.
  const limit = byteLimit(options.maxBytes + options.maxHeaderBytes + 64 * 1024);
  const lines = createInterface({ input: input.pipe(limit), crlfDelay: Infinity });
  const tooLarge = () => new SendmailFailure(EXIT.dataErr, `message larger than limits.messageSize (${options.maxBytes} bytes); nothing was sent`);
  limit.on('error', () => lines.close());

  const header: string[] = [];
  let headerBytes = 0;
  let inHeader = true;
  let atStart = true;
  let size = 0;
  let eightBit = false;
  let eightBitHeaders = false;
  let batch: Buffer[] = [];
  let batched = 0;

  const emit = async (chunk: Buffer) => {
    size += chunk.length;
    if (size > options.maxBytes) throw tooLarge();
    batch.push(chunk);
    batched += chunk.length;
    if (batched >= WRITE_BATCH) await flush();
  };
  const flush = async () => {
    if (batched === 0) return;
    const chunk = Buffer.concat(batch);
    batch = [];
    batched = 0;
    await options.write(chunk);
  };
  const endHeader = async () => {
    inHeader = false;
    const raw = Buffer.from(`${header.map((line) => `${line}\r\n`).join('')}\r\n`, 'latin1');
    eightBitHeaders = hasEightBit(raw);
    const edited = options.headers(raw);
    eightBit ||= hasEightBit(edited);
    await emit(edited);
  };

  try {
    for await (const text of lines) {
      if (atStart && /^>*From /.test(text)) continue;
      atStart = false;
      if (options.dotEndsInput && text === '.') break;
      const line = Buffer.from(text, 'latin1');
      if (inHeader) {
        if (text === '') {
          await endHeader();
          continue;
        }
        const continues = /^[ \t]/.test(text) && header.length > 0;
        if (continues || FIELD.test(text)) {
          headerBytes += line.length + 2;
          if (headerBytes > options.maxHeaderBytes) {
            throw new SendmailFailure(EXIT.dataErr, `header block larger than limits.headerSize (${options.maxHeaderBytes} bytes); nothing was sent`);
          }
          header.push(text);
          continue;
        }
        // Not a header field: the body starts here, after the empty line that was missing.
        await endHeader();
      }
      eightBit ||= hasEightBit(line);
      await emit(Buffer.concat([line, CRLF]));
    }
  } catch (error) {
    if (limit.exceeded) throw tooLarge();
    throw error;
  }
  if (limit.exceeded) throw tooLarge();
  if (inHeader) await endHeader();
  await flush();
  return { size, eightBit, eightBitHeaders };
}

function hasEightBit(bytes: Buffer): boolean {
  return bytes.some((byte) => byte > 0x7f);
}

/** Passes bytes through until `max` have gone by, then fails (and says so through `exceeded`). */
function byteLimit(max: number): Transform & { exceeded: boolean } {
  let seen = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max) {
        limit.exceeded = true;
        done(new Error('input too large'));
        return;
      }
      done(null, chunk);
    },
  }) as Transform & { exceeded: boolean };
  limit.exceeded = false;
  limit.setEncoding('latin1');
  return limit;
}
