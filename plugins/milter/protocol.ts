/**
 * The Sendmail milter protocol, version 6, as libmilter speaks it (its
 * mfdef.h is the only specification there is). Every packet is a 32-bit
 * big-endian length, then one command byte, then `length - 1` bytes of data;
 * strings inside are NUL-terminated.
 */

export const MILTER_VERSION = 6;

/** Commands the MTA sends (SMFIC_*). */
export const Command = {
  abort: 'A',
  body: 'B',
  connect: 'C',
  macro: 'D',
  endOfMessage: 'E',
  helo: 'H',
  header: 'L',
  mail: 'M',
  endOfHeaders: 'N',
  optionNegotiation: 'O',
  quit: 'Q',
  rcpt: 'R',
  data: 'T',
} as const;
export type CommandCode = (typeof Command)[keyof typeof Command];

/** Replies and modification requests the milter sends (SMFIR_*). */
export const Reply = {
  addRecipient: '+',
  deleteRecipient: '-',
  addRecipientWithArgs: '2',
  shutdown: '4',
  accept: 'a',
  replaceBody: 'b',
  continue: 'c',
  discard: 'd',
  changeSender: 'e',
  connectionFailure: 'f',
  addHeader: 'h',
  insertHeader: 'i',
  setSymbolList: 'l',
  changeHeader: 'm',
  progress: 'p',
  quarantine: 'q',
  reject: 'r',
  skip: 's',
  tempfail: 't',
  replyCode: 'y',
  optionNegotiation: 'O',
} as const;

/** What the milter may ask to change (SMFIF_*), negotiated in OPTNEG. */
export const Actions = {
  addHeaders: 0x01,
  changeBody: 0x02,
  addRecipients: 0x04,
  deleteRecipients: 0x08,
  changeHeaders: 0x10,
  quarantine: 0x20,
  changeSender: 0x40,
  addRecipientsWithArgs: 0x80,
  setSymbolList: 0x100,
} as const;
/** Petrel can do every action libmilter defines. */
export const ALL_ACTIONS = 0x1ff;

/** Steps the milter may leave out or answer without a reply (SMFIP_*), negotiated in OPTNEG. */
export const Protocol = {
  noConnect: 0x01,
  noHelo: 0x02,
  noMail: 0x04,
  noRcpt: 0x08,
  noBody: 0x10,
  noHeaders: 0x20,
  noEndOfHeaders: 0x40,
  noReplyHeader: 0x80,
  noUnknown: 0x100,
  noData: 0x200,
  skip: 0x400,
  rejectedRecipients: 0x800,
  noReplyConnect: 0x1000,
  noReplyHelo: 0x2000,
  noReplyMail: 0x4000,
  noReplyRcpt: 0x8000,
  noReplyData: 0x10000,
  noReplyUnknown: 0x20000,
  noReplyEndOfHeaders: 0x40000,
  noReplyBody: 0x80000,
  headerLeadingSpace: 0x100000,
} as const;

/**
 * What Petrel offers: every step may be skipped or left without a reply, SKIP
 * is understood, headers may come with their leading space. Not offered:
 * rejected recipients (a milter sees a RCPT before the plugins after it
 * decide) and body chunks over 64 KiB.
 */
export const OFFERED_PROTOCOL =
  Protocol.noConnect | Protocol.noHelo | Protocol.noMail | Protocol.noRcpt | Protocol.noBody | Protocol.noHeaders |
  Protocol.noEndOfHeaders | Protocol.noReplyHeader | Protocol.noUnknown | Protocol.noData | Protocol.skip |
  Protocol.noReplyConnect | Protocol.noReplyHelo | Protocol.noReplyMail | Protocol.noReplyRcpt | Protocol.noReplyData |
  Protocol.noReplyUnknown | Protocol.noReplyEndOfHeaders | Protocol.noReplyBody | Protocol.headerLeadingSpace;

/** The stages a milter may ask macros for (SMFIM_*), in setsymlist. */
export const MacroStage = { connect: 0, helo: 1, mail: 2, rcpt: 3, data: 4, endOfMessage: 5, endOfHeaders: 6 } as const;
export type MacroStageName = keyof typeof MacroStage;

/** Body chunks are at most this long (MILTER_CHUNK_SIZE). */
export const BODY_CHUNK = 65535;

/**
 * The largest packet Petrel reads. libmilter's own limit is 64 KiB of data
 * (1 MiB when negotiated, which Petrel does not); anything bigger is a broken
 * or hostile filter, refused before its bytes are buffered.
 */
export const MAX_PACKET = 1024 * 1024;

/** One packet: command (or reply) letter and its data. */
export interface Packet {
  readonly code: string;
  readonly data: Buffer;
}

export function encodePacket(code: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head.write(code, 4, 'latin1');
  return Buffer.concat([head, data]);
}

/** NUL-terminated strings, one after another. */
export function cstrings(...values: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(values.flatMap((value) => [typeof value === 'string' ? Buffer.from(value, 'utf8') : value, Buffer.from([0])]));
}

export function uint32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value >>> 0, 0);
  return buffer;
}

export class ProtocolError extends Error {}

/**
 * Cuts a byte stream into packets. Refuses a zero length (there is always a
 * command byte) and a length over MAX_PACKET at once, from the four length
 * bytes, so a filter cannot make Petrel buffer without bound.
 */
export class PacketReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Packet[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const packets: Packet[] = [];
    while (this.#pending.length >= 4) {
      const length = this.#pending.readUInt32BE(0);
      if (length === 0) throw new ProtocolError('sent a packet of length 0');
      if (length > MAX_PACKET) throw new ProtocolError(`sent a packet of ${length} bytes (at most ${MAX_PACKET} are accepted)`);
      if (this.#pending.length < 4 + length) break;
      packets.push({ code: String.fromCharCode(this.#pending[4]), data: this.#pending.subarray(5, 4 + length) });
      this.#pending = this.#pending.subarray(4 + length);
    }
    return packets;
  }
}

/** Reads NUL-terminated strings and 32-bit numbers from a packet's data, failing on a short or unterminated field. */
export class DataCursor {
  #at = 0;
  constructor(private readonly data: Buffer) {}

  get remaining(): number {
    return this.data.length - this.#at;
  }

  uint32(): number {
    if (this.remaining < 4) throw new ProtocolError('sent a packet too short for its numbers');
    const value = this.data.readUInt32BE(this.#at);
    this.#at += 4;
    return value;
  }

  bytes(): Buffer {
    const end = this.data.indexOf(0, this.#at);
    if (end < 0) throw new ProtocolError('sent a string without its terminating NUL');
    const value = this.data.subarray(this.#at, end);
    this.#at = end + 1;
    return value;
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  rest(): Buffer {
    const value = this.data.subarray(this.#at);
    this.#at = this.data.length;
    return value;
  }
}
