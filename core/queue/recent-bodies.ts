/** What an entry costs beyond its bytes (Map entry, Buffer object), so many tiny bodies are bounded too. */
const ENTRY_OVERHEAD = 128;

/**
 * The bodies of the most recently stored small messages, so a delivery that
 * follows soon after acceptance (the usual case) sends them without reading
 * the .msg file back. Bounded by total bytes; the oldest go first. Only a
 * copy: the .msg file is what is durable, and a body not found here is read
 * from it.
 */
export class RecentBodies {
  readonly #bodies = new Map<string, Buffer>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  add(id: string, body: Buffer): void {
    // An empty body needs no file read anyway.
    if (body.length === 0 || body.length + ENTRY_OVERHEAD > this.maxBytes) return;
    this.delete(id);
    // Kept in a buffer of its own: `body` is usually a view into a larger one (the whole
    // message, often a slice of Node's shared 8 KiB pool), which it would pin in memory.
    const own = Buffer.allocUnsafeSlow(body.length);
    body.copy(own);
    this.#bodies.set(id, own);
    this.#bytes += own.length + ENTRY_OVERHEAD;
    // A Map iterates in insertion order: the first keys are the oldest.
    for (const [oldest, oldestBody] of this.#bodies) {
      if (this.#bytes <= this.maxBytes) break;
      this.#bodies.delete(oldest);
      this.#bytes -= oldestBody.length + ENTRY_OVERHEAD;
    }
  }

  get(id: string): Buffer | undefined {
    return this.#bodies.get(id);
  }

  delete(id: string): void {
    const body = this.#bodies.get(id);
    if (body === undefined) return;
    this.#bodies.delete(id);
    this.#bytes -= body.length + ENTRY_OVERHEAD;
  }

  /** Bytes held, counting each entry's overhead. */
  get bytes(): number {
    return this.#bytes;
  }
}
