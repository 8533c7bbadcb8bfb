const CR = 13;
const EMPTY = Buffer.alloc(0);
const LF = 10;
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

export interface InspectorLimits {
  /** Bytes after which the message is counted but no longer passed on. */
  readonly maxBytes: number;
  /** Largest header block accepted before the empty line that ends it. */
  readonly maxHeaderBytes: number;
}

/**
 * Looks at the DATA stream on its way to the spool file. In one pass it:
 * - finds bare CR and bare LF (SMTP smuggling, RFC 5321 2.3.8): smtp-server
 *   passes them through, and a downstream server that treats `\n.\n` as the end
 *   of data would see a second, forged message;
 * - captures the header block (up to the first empty line) for parsing;
 * - counts bytes, and stops passing data on past the size limit so an oversized
 *   message never fills the disk.
 */
export class LineEndingInspector {
  bareLineEnding = false;
  bytes = 0;
  headerTooLarge = false;
  /** Header block including its terminating empty line, once found. */
  headerBlock: Buffer | undefined;

  readonly #limits: InspectorLimits;
  #previousByte = -1;
  /** The header bytes received so far, joined only once the block's end is found. */
  #headerChunks: Buffer[] = [];
  #headerBytesSeen = 0;
  /** The last (up to) three header bytes seen, where a CRLF CRLF split across chunks starts. */
  #tail: Buffer = CRLF;

  constructor(limits: InspectorLimits) {
    this.#limits = limits;
  }

  /** Inspects the next chunk; returns the part of it to store (empty past the size limit). */
  inspect(chunk: Buffer): Buffer {
    if (!this.bareLineEnding) this.#scanLineEndings(chunk);
    if (this.headerBlock === undefined && !this.headerTooLarge) this.#collectHeader(chunk);
    const before = this.bytes;
    this.bytes += chunk.length;
    if (this.bytes <= this.#limits.maxBytes) return chunk;
    return before < this.#limits.maxBytes ? chunk.subarray(0, this.#limits.maxBytes - before) : EMPTY;
  }

  /** Call once after the last chunk. */
  finish(): void {
    // A CR as the very last byte has no LF after it.
    if (this.#previousByte === CR) this.bareLineEnding = true;
    if (this.headerBlock === undefined && !this.headerTooLarge) {
      // No empty line at all: the whole message is header (RFC 5322 allows no body).
      this.headerBlock = Buffer.concat(this.#headerChunks, this.#headerBytesSeen);
    }
    this.#headerChunks = [];
  }

  #scanLineEndings(chunk: Buffer): void {
    // Check every LF has a CR before it, and every CR an LF after it. indexOf
    // runs natively, so a well-formed message costs one search per line.
    if (chunk.length === 0) return;
    if (this.#previousByte === CR && chunk[0] !== LF) {
      this.bareLineEnding = true;
      return;
    }
    for (let at = chunk.indexOf(LF); at !== -1; at = chunk.indexOf(LF, at + 1)) {
      const before = at === 0 ? this.#previousByte : chunk[at - 1];
      if (before !== CR) {
        this.bareLineEnding = true;
        return;
      }
    }
    for (let at = chunk.indexOf(CR); at !== -1; at = chunk.indexOf(CR, at + 1)) {
      if (at + 1 < chunk.length && chunk[at + 1] !== LF) {
        this.bareLineEnding = true;
        return;
      }
    }
    this.#previousByte = chunk[chunk.length - 1];
  }

  #collectHeader(chunk: Buffer): void {
    const offset = this.#headerBytesSeen;
    this.#headerChunks.push(chunk);
    this.#headerBytesSeen += chunk.length;
    const end = this.#headerEnd(chunk, offset);
    if (end !== undefined && end <= this.#limits.maxHeaderBytes) {
      // Joined once, when the end is known: joining on every chunk would copy the header
      // over and over, quadratic in its size for a client that sends it in small pieces.
      this.headerBlock = Buffer.concat(this.#headerChunks, this.#headerBytesSeen).subarray(0, end);
    } else if (end !== undefined || this.#headerBytesSeen > this.#limits.maxHeaderBytes) {
      this.headerTooLarge = true;
    }
    if (this.headerBlock !== undefined || this.headerTooLarge) {
      this.#headerChunks = [];
      return;
    }
    this.#tail = lastBytes(this.#tail, chunk, 3);
  }

  /**
   * Where the header block ends (just after its CRLF CRLF), counted from the start of the
   * message, if it ends in `chunk`. Only the new chunk is searched, and the three bytes
   * before it for a CRLF CRLF split across chunks, so every byte is looked at once or twice.
   * The tail starts as a virtual CRLF before the message, which makes a message that opens
   * with an empty line (no header fields) end its header block at byte 2.
   */
  #headerEnd(chunk: Buffer, offset: number): number | undefined {
    const tail = this.#tail;
    const edge = Buffer.concat([tail, chunk.subarray(0, 3)]);
    const straddling = edge.indexOf(HEADER_END);
    if (straddling !== -1) return offset - tail.length + straddling + HEADER_END.length;
    const inside = chunk.indexOf(HEADER_END);
    return inside === -1 ? undefined : offset + inside + HEADER_END.length;
  }
}

/** The last `count` bytes of `before` followed by `chunk`. */
function lastBytes(before: Buffer, chunk: Buffer, count: number): Buffer {
  if (chunk.length >= count) return Buffer.from(chunk.subarray(chunk.length - count));
  return Buffer.concat([before, chunk]).subarray(-count);
}
