import { ftruncate } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DirectorySyncer } from 'petrel';
import { OpenFile } from 'petrel/queue';

const ftruncateAsync = promisify(ftruncate);

/** Where a record was written. */
export interface Location {
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
}

interface Waiting {
  readonly data: Buffer;
  readonly resolve: (location: Location) => void;
  readonly reject: (error: unknown) => void;
}

/** The file name of segment `n`: numbered, so names sort in the order they were written. */
export function segmentName(segment: number): string {
  return `${String(segment).padStart(12, '0')}.seg`;
}

export function segmentNumber(name: string): number | undefined {
  const match = /^(\d{12})\.seg$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Appends records to the newest segment with group commit: records that
 * arrive while a write and its fdatasync are in flight wait, and go out
 * together in the next one (one write, one fdatasync for the whole batch).
 * `append` resolves only after the fdatasync that covers its record, so a
 * record whose promise resolved survives a crash of the machine.
 *
 * A segment is written by one process only, from its start: a new one is
 * made at every start and whenever the current one is full. A write or sync
 * that fails rejects its whole batch and cuts the segment back to where the
 * batch began (failing that, the next batch starts a new segment), so a
 * rejected record is not found at recovery.
 */
export class JournalWriter {
  #file: OpenFile | undefined;
  #segment = 0;
  /** The last segment number taken (a failed rotation uses one up, so the next does not collide with its file). */
  #lastNumber: number;
  #position = 0;
  #waiting: Waiting[] = [];
  #flushing: Promise<void> | undefined;
  #mustRotate = true;
  /** Batches written and synced so far (each one write and one fdatasync), for tests and diagnostics. */
  syncs = 0;
  readonly #syncer: DirectorySyncer;

  constructor(
    readonly directory: string,
    readonly segmentBytes: number,
    /** The last segment number in use; the writer starts after it. */
    lastSegment: number,
    /** Told of each new segment as it takes the writes (and of the one it replaced, now full). */
    private readonly onSegment: (opened: number, sealed: number | undefined) => void,
  ) {
    this.#segment = lastSegment;
    this.#lastNumber = lastSegment;
    this.#syncer = new DirectorySyncer(directory);
  }

  /** The segment being written (never deleted). */
  get segment(): number {
    return this.#segment;
  }

  /** Opens a new segment to write to. */
  async open(): Promise<void> {
    await this.#rotate();
  }

  append(data: Buffer): Promise<Location> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ data, resolve, reject });
      this.#flushing ??= this.#flush().finally(() => {
        this.#flushing = undefined;
      });
    });
  }

  /** Waits for what is being written, then closes the segment and the directory. */
  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    await this.#file?.close();
    this.#file = undefined;
    await this.#syncer.close();
  }

  /** fsyncs the segments' directory (after segments were deleted). */
  syncDirectory(): Promise<void> {
    return this.#syncer.sync();
  }

  async #flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        const locations = await this.#commit(batch.map((w) => w.data));
        batch.forEach((w, i) => w.resolve(locations[i]));
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
  }

  async #commit(records: Buffer[]): Promise<Location[]> {
    const data = records.length === 1 ? records[0] : Buffer.concat(records);
    if (this.#mustRotate || (this.#position > 0 && this.#position + data.length > this.segmentBytes)) await this.#rotate();
    const file = this.#file!;
    const start = this.#position;
    try {
      await file.write(data, start);
      await file.datasync();
    } catch (error) {
      await ftruncateAsync(file.fd, start).catch(() => {
        this.#mustRotate = true;
      });
      throw error;
    }
    this.#position += data.length;
    this.syncs++;
    let offset = start;
    return records.map((record) => {
      const location = { segment: this.#segment, offset, length: record.length };
      offset += record.length;
      return location;
    });
  }

  async #rotate(): Promise<void> {
    this.#mustRotate = true;
    const next = ++this.#lastNumber;
    const file = await OpenFile.open(join(this.directory, segmentName(next)), 'wx');
    try {
      // The new file's name must be durable before a record in it is acknowledged.
      await this.#syncer.sync();
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
    const sealed = this.#file === undefined ? undefined : this.#segment;
    await this.#file?.close().catch(() => undefined);
    this.#file = file;
    this.#segment = next;
    this.#position = 0;
    this.#mustRotate = false;
    this.onSegment(next, sealed);
  }
}
