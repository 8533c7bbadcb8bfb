import type { StoredMessage } from './spool-files.js';

/**
 * The full records (envelope, recipients, header block) of the messages
 * most recently stored or changed, so the usual path (accepted, then
 * delivered moments later) never reads a record back from disk. Bounded by
 * count: beyond it a message is known in memory only by its compact entry,
 * and its record is read from its file when it is leased, shown or changed.
 */
export class RecentRecords {
  readonly #records = new Map<string, StoredMessage>();

  constructor(readonly maxRecords: number) {}

  set(record: StoredMessage): void {
    this.#records.delete(record.id);
    this.#records.set(record.id, record);
    // A Map iterates in insertion order: the first key is the oldest.
    if (this.#records.size > this.maxRecords) this.#records.delete(this.#records.keys().next().value as string);
  }

  get(id: string): StoredMessage | undefined {
    return this.#records.get(id);
  }

  delete(id: string): void {
    this.#records.delete(id);
  }
}
