/**
 * Bytes of in-memory message copies (SpooledFile.content) held at once,
 * across all sessions: each copy is at most IN_MEMORY_COPY_LIMIT, but a
 * thousand sessions waiting on slow checks could otherwise hold a thousand of
 * them. Past the cap a message simply gets no copy and is read from its file.
 */
export class CopyBudget {
  readonly #held = new Map<string, number>();
  #used = 0;

  constructor(readonly maxBytes: number) {}

  /** Reserves `bytes` more for the message at `path`; false, reserving nothing, past the cap. */
  reserve(path: string, bytes: number): boolean {
    if (this.#used + bytes > this.maxBytes) return false;
    this.#held.set(path, (this.#held.get(path) ?? 0) + bytes);
    this.#used += bytes;
    return true;
  }

  /** Gives back what was reserved for `path` (its message is queued or discarded). */
  release(path: string): void {
    this.#used -= this.#held.get(path) ?? 0;
    this.#held.delete(path);
  }
}
