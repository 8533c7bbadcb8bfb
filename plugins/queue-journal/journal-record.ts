import { crc32 } from 'node:zlib';
import type { QueuedMessage } from 'petrel/queue';

/**
 * The records of the journal and how they are framed on disk. Every record is
 *
 *   magic "PJR1" (4 bytes) | payload length (u32 BE) | CRC-32 of the payload (u32 BE) | payload
 *
 * and its payload starts with a type byte:
 *
 *   1 add     u32 JSON length, the message's record (JSON), u32 header length, the outgoing
 *             header block, then the body bytes (none for a large message, whose bytes
 *             are a file of their own)
 *   2 state   the message's record as it is now (JSON): after an attempt, a hold, a retry
 *   3 remove  the message's id: it left the queue
 *
 * The magic lets recovery find the next whole record after a damaged one;
 * the checksum tells a record that was written whole from one torn by a
 * crash or damaged later.
 */

const MAGIC = Buffer.from('PJR1', 'latin1');
export const FRAME_HEADER_BYTES = 12;
/** No record is this large (a body of up to the inline limit, plus its record): a length beyond it is damage. */
const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

const ADD = 1;
const STATE = 2;
const REMOVE = 3;

/** What the journal keeps about a message besides its bytes. */
export interface StoredMessage extends QueuedMessage {
  /** Byte offset of the body in the message as received (for a large message, in its file). */
  readonly bodyOffset: number;
  /** The message's bytes are a file of their own (large/<id>), not in the journal. */
  readonly large?: boolean;
}

export type JournalRecord =
  | { readonly kind: 'add'; readonly message: StoredMessage; readonly headerBlock: Buffer; readonly body: Buffer }
  | { readonly kind: 'state'; readonly message: StoredMessage }
  | { readonly kind: 'remove'; readonly id: string };

export function addRecord(message: StoredMessage, headerBlock: Buffer, body: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const payload = Buffer.allocUnsafe(1 + 4 + json.length + 4 + headerBlock.length + body.length);
  let at = payload.writeUInt8(ADD, 0);
  at = payload.writeUInt32BE(json.length, at);
  at += json.copy(payload, at);
  at = payload.writeUInt32BE(headerBlock.length, at);
  at += headerBlock.copy(payload, at);
  body.copy(payload, at);
  return frame(payload);
}

export function stateRecord(message: StoredMessage): Buffer {
  return frame(Buffer.concat([Buffer.of(STATE), Buffer.from(JSON.stringify(message))]));
}

export function removeRecord(id: string): Buffer {
  return frame(Buffer.concat([Buffer.of(REMOVE), Buffer.from(id)]));
}

function frame(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(payload.length, 4);
  header.writeUInt32BE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

/** The payload of the whole record framed at `offset`, or undefined if there is none (torn, damaged, not a record). */
export function payloadAt(bytes: Buffer, offset: number): Buffer | undefined {
  if (offset + FRAME_HEADER_BYTES > bytes.length || !bytes.subarray(offset, offset + 4).equals(MAGIC)) return undefined;
  const length = bytes.readUInt32BE(offset + 4);
  const end = offset + FRAME_HEADER_BYTES + length;
  if (length === 0 || length > MAX_PAYLOAD_BYTES || end > bytes.length) return undefined;
  const payload = bytes.subarray(offset + FRAME_HEADER_BYTES, end);
  return crc32(payload) === bytes.readUInt32BE(offset + 8) ? payload : undefined;
}

/** Where the next whole record starts at or after `from`, or -1. */
export function nextRecordAt(bytes: Buffer, from: number): number {
  for (let at = bytes.indexOf(MAGIC, from); at !== -1; at = bytes.indexOf(MAGIC, at + 1)) {
    if (payloadAt(bytes, at) !== undefined) return at;
  }
  return -1;
}

/** Decodes a payload whose checksum was right; throws if it is not a record of ours. */
export function decodeRecord(payload: Buffer): JournalRecord {
  switch (payload[0]) {
    case ADD: {
      const jsonLength = payload.readUInt32BE(1);
      const message = JSON.parse(payload.toString('utf8', 5, 5 + jsonLength)) as StoredMessage;
      const headerAt = 5 + jsonLength + 4;
      const headerLength = payload.readUInt32BE(5 + jsonLength);
      return { kind: 'add', message, headerBlock: payload.subarray(headerAt, headerAt + headerLength), body: payload.subarray(headerAt + headerLength) };
    }
    case STATE:
      return { kind: 'state', message: JSON.parse(payload.toString('utf8', 1)) as StoredMessage };
    case REMOVE:
      return { kind: 'remove', id: payload.toString('utf8', 1) };
    default:
      throw new Error(`unknown journal record type ${payload[0]}`);
  }
}
