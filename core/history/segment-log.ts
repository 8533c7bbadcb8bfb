import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';

/** How long appended lines wait in memory before they are written, at most. */
const FLUSH_AFTER_MS = 250;
/** A flush starts at once when this much is waiting. */
const FLUSH_AT_BYTES = 256 * 1024;
const DAY_MS = 86_400_000;
const SEGMENT = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;

export interface SegmentLogOptions {
  readonly dir: string;
  /** Bytes on disk at most, all segments together; the oldest go first. */
  readonly maxBytes: number;
  /** A segment is removed once its day ended this long ago. */
  readonly keepFor: number;
  /** Bytes waiting in memory at most; past that lines are dropped (and counted). */
  readonly maxBuffered: number;
}

/** The UTC day of an epoch ms, as segments are named. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * An append-only log of text lines in daily files (`2026-12-05.jsonl`),
 * bounded in age and in total size. Appending never waits and never fails:
 * lines are buffered and written a moment later in one write, without
 * fsync, because what is kept here is diagnostics, not mail (a crash loses
 * the last fraction of a second of it). If the disk is slow or failing and
 * the buffer fills, lines are dropped and counted rather than held up.
 */
export class SegmentLog {
  #buffer: string[] = [];
  #buffered = 0;
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #file: { day: string; handle: FileHandle; bytes: number } | undefined;
  /** Sizes of the segments before today's, oldest first. */
  #older: { day: string; bytes: number }[] | undefined;
  #closed = false;
  #warned = false;

  constructor(
    private readonly options: SegmentLogOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Lines dropped because the buffer was full, the size cap reached or the disk failing. */
  get dropped(): number {
    return this.#dropped;
  }

  append(line: string): void {
    const bytes = Buffer.byteLength(line) + 1;
    if (this.#closed || this.#buffered + bytes > this.options.maxBuffered) {
      this.#dropped++;
      return;
    }
    this.#buffer.push(line);
    this.#buffered += bytes;
    if (this.#buffered >= FLUSH_AT_BYTES) this.#flushSoon(0);
    else this.#flushSoon(FLUSH_AFTER_MS);
  }

  /** Writes what is waiting; resolves when it is in the file (not synced). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const run = this.#writing.then(() => this.#write());
    this.#writing = run.catch(() => undefined);
    return this.#writing;
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#file?.handle.close().catch(() => undefined);
    this.#file = undefined;
  }

  /**
   * Every line from the segments of `fromDay` on (all when undefined), oldest
   * segment first, including what is still buffered. Reads the files as they
   * are; lines written meanwhile may or may not be seen.
   */
  async *lines(fromDay?: string): AsyncGenerator<string> {
    await this.flush();
    for (const day of await this.#days()) {
      if (fromDay !== undefined && day < fromDay) continue;
      const input = createReadStream(join(this.options.dir, `${day}.jsonl`), { encoding: 'utf8' });
      input.on('error', () => undefined);
      const reader = createInterface({ input, crlfDelay: Infinity });
      try {
        for await (const line of reader) if (line !== '') yield line;
      } catch {
        // A segment removed while it was read: what was read stands.
      } finally {
        reader.close();
        input.destroy();
      }
    }
  }

  /** Removes segments past their age, then the oldest until the whole fits the size cap. */
  async prune(): Promise<void> {
    const today = dayOf(this.clock.now());
    const cutoff = dayOf(this.clock.now() - this.options.keepFor - DAY_MS);
    const older = await this.#olderSegments(today);
    const keep: { day: string; bytes: number }[] = [];
    for (const segment of older) {
      if (segment.day <= cutoff) await this.#remove(segment.day);
      else keep.push(segment);
    }
    let total = keep.reduce((sum, s) => sum + s.bytes, 0) + (this.#file?.bytes ?? 0);
    while (total > this.options.maxBytes && keep.length > 0) {
      const oldest = keep.shift()!;
      await this.#remove(oldest.day);
      total -= oldest.bytes;
    }
    this.#older = keep;
  }

  #flushSoon(ms: number): void {
    if (this.#timer !== undefined && ms > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.flush(), ms);
    this.#timer.unref();
  }

  async #write(): Promise<void> {
    if (this.#buffer.length === 0) return;
    const lines = this.#buffer;
    this.#buffer = [];
    this.#buffered = 0;
    try {
      const file = await this.#today();
      const data = `${lines.join('\n')}\n`;
      const bytes = Buffer.byteLength(data);
      const olderBytes = (this.#older ?? []).reduce((sum, s) => sum + s.bytes, 0);
      if (olderBytes + file.bytes + bytes > this.options.maxBytes) {
        // Only today's segment is left to make room from: keep what it has, drop the new lines.
        this.#dropped += lines.length;
        return;
      }
      await file.handle.write(data);
      file.bytes += bytes;
      this.#warned = false;
    } catch (error) {
      this.#dropped += lines.length;
      if (!this.#warned) this.log.warn({ err: error, dir: this.options.dir }, `history: cannot write (${(error as Error).message}); records are dropped until it works again`);
      this.#warned = true;
    }
  }

  /** Today's segment, opened for appending; a new day closes yesterday's and prunes. */
  async #today(): Promise<{ day: string; handle: FileHandle; bytes: number }> {
    const day = dayOf(this.clock.now());
    if (this.#file?.day === day) return this.#file;
    const previous = this.#file;
    this.#file = undefined;
    await previous?.handle.close().catch(() => undefined);
    await mkdir(this.options.dir, { recursive: true });
    const path = join(this.options.dir, `${day}.jsonl`);
    const handle = await open(path, 'a', 0o640);
    const bytes = (await handle.stat()).size;
    this.#file = { day, handle, bytes };
    await this.prune();
    return this.#file;
  }

  async #days(): Promise<string[]> {
    const names = await readdir(this.options.dir).catch(() => [] as string[]);
    return names.flatMap((name) => SEGMENT.exec(name)?.[1] ?? []).sort();
  }

  async #olderSegments(today: string): Promise<{ day: string; bytes: number }[]> {
    const days = (await this.#days()).filter((day) => day < today);
    return Promise.all(days.map(async (day) => ({ day, bytes: (await stat(join(this.options.dir, `${day}.jsonl`)).catch(() => ({ size: 0 }))).size })));
  }

  async #remove(day: string): Promise<void> {
    await rm(join(this.options.dir, `${day}.jsonl`), { force: true });
    this.log.info({ dir: this.options.dir, day }, `history: removed the segment of ${day}`);
  }
}
