const CR = 13;
const EMPTY = Buffer.alloc(0);
const LF = 10;

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
  #headerChunks: Buffer[] = [];
  #headerBytesSeen = 0;

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
      this.headerBlock = Buffer.concat(this.#headerChunks);
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
    // Search from a few bytes back so a CRLFCRLF split across chunks is found.
    const carry = Math.min(3, this.#headerBytesSeen);
    this.#headerChunks.push(chunk);
    const searchStart = this.#headerBytesSeen - carry;
    this.#headerBytesSeen += chunk.length;
    const seen = this.#headerChunks.length === 1 ? chunk : Buffer.concat(this.#headerChunks);
    this.#headerChunks = [seen];
    const end = seen.indexOf('\r\n\r\n', Math.max(0, searchStart));
    const startsWithEmptyLine = seen.length >= 2 && seen[0] === CR && seen[1] === LF;
    if (startsWithEmptyLine) {
      this.headerBlock = seen.subarray(0, 2);
    } else if (end !== -1) {
      this.headerBlock = seen.subarray(0, end + 4);
    } else if (this.#headerBytesSeen > this.#limits.maxHeaderBytes) {
      this.headerTooLarge = true;
    }
    if (this.headerBlock !== undefined || this.headerTooLarge) this.#headerChunks = [];
  }
}
