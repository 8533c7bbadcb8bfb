import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { Logger } from '../log/logger.js';
import { boundedLine } from './bounded-record.js';
import type { HistoryRecord } from './history-record.js';
import { idOfLine, parseHistoryQuery, queueIdTime, recordMatches, type HistoryQuery } from './history-query.js';
import { RecentActivity } from './recent-activity.js';
import { dayOf, SegmentLog } from './segment-log.js';

export interface HistorySettings {
  /** How long a message's history is kept after it left the queue. */
  readonly retention: number;
  /** Bytes on disk for the history of accepted messages. */
  readonly maxSize: number;
  /** Bytes on disk for refusals (kept for `retention` too). */
  readonly refusalsMaxSize: number;
  /** delivery.expireAfter: the longest a message stays queued (not held). */
  readonly expireAfter: number;
}

/** One message (or refused transaction) and its records, oldest first. */
export interface MessageHistory {
  readonly id: string;
  readonly records: readonly HistoryRecord[];
}

/** Records buffered in memory at most per log, before they are dropped. */
const MAX_BUFFERED = 8 * 1024 * 1024;

/**
 * Each message's history, and a bounded record of refusals, in
 * `dataDir/history/` (messages/ and refusals/, one file a day). Independent
 * of the queue plugin: the queue keeps mail, this keeps what happened to it,
 * on the node where it happened. Writes are buffered and never synced, so
 * recording costs the 250 path no I/O wait; a crash loses the last moment of
 * history, never mail. A segment of messages is kept for retention plus
 * delivery.expireAfter after its day, so the whole history of a message stays
 * at least `retention` after it left the queue; the size caps win over that
 * (the oldest days go first).
 */
export class HistoryStore {
  readonly activity: RecentActivity;
  readonly #messages: SegmentLog;
  readonly #refusals: SegmentLog;

  constructor(dataDir: string, settings: HistorySettings, clock: Clock, log: Logger) {
    const dir = join(dataDir, 'history');
    this.#messages = new SegmentLog(
      { dir: join(dir, 'messages'), maxBytes: settings.maxSize, keepFor: settings.retention + settings.expireAfter, maxBuffered: MAX_BUFFERED },
      clock,
      log,
    );
    this.#refusals = new SegmentLog({ dir: join(dir, 'refusals'), maxBytes: settings.refusalsMaxSize, keepFor: settings.retention, maxBuffered: MAX_BUFFERED }, clock, log);
    this.activity = new RecentActivity(() => clock.now());
  }

  /** Records dropped (buffer full, size cap, disk failing). */
  get dropped(): number {
    return this.#messages.dropped + this.#refusals.dropped;
  }

  /** Keeps a record (at most MAX_RECORD_BYTES of it); never waits and never throws. */
  append(record: HistoryRecord): void {
    this.activity.count(record);
    (record.t === 'refused' ? this.#refusals : this.#messages).append(boundedLine(record));
  }

  /** Writes what is buffered (shutdown, before a read). */
  async flush(): Promise<void> {
    await Promise.all([this.#messages.flush(), this.#refusals.flush()]);
  }

  async prune(): Promise<void> {
    await Promise.all([this.#messages.prune(), this.#refusals.prune()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.#messages.close(), this.#refusals.close()]);
  }

  /** Every record of one message, oldest first. */
  async recordsOf(id: string): Promise<HistoryRecord[]> {
    const records: HistoryRecord[] = [];
    for await (const line of this.#messages.lines(dayOf(queueIdTime(id)))) {
      if (idOfLine(line) === id) records.push(JSON.parse(line) as HistoryRecord);
    }
    for await (const line of this.#refusals.lines(dayOf(queueIdTime(id)))) {
      if (idOfLine(line) === id) records.push(JSON.parse(line) as HistoryRecord);
    }
    return records.sort((a, b) => a.at - b.at);
  }

  /**
   * The messages and refusals a query names (`petrel why`), newest first, at
   * most `limit`, each with all its records. Reads the retained history
   * (from `since`, epoch ms, when given): a scan, which is what a diagnostic
   * tool can afford and the 250 path cannot.
   */
  async find(text: string | HistoryQuery, options: { since?: number; limit?: number } = {}): Promise<MessageHistory[]> {
    const query = typeof text === 'string' ? parseHistoryQuery(text) : text;
    const limit = options.limit ?? 20;
    if (query.needle === '') return [];
    if (query.queueId) {
      const records = await this.recordsOf(query.needle);
      return records.length > 0 ? [{ id: query.needle, records }] : [];
    }
    const fromDay = options.since === undefined ? undefined : dayOf(options.since);
    const refused = new Map<string, HistoryRecord[]>();
    for await (const record of this.#matching(this.#refusals, query, fromDay)) refused.set(record.id, [...(refused.get(record.id) ?? []), record]);
    const ids = new Set<string>();
    for await (const record of this.#matching(this.#messages, query, fromDay)) ids.add(record.id);
    const found = new Map<string, HistoryRecord[]>(refused);
    if (ids.size > 0) {
      const earliest = Math.min(...[...ids].map(queueIdTime));
      for await (const line of this.#messages.lines(dayOf(earliest))) {
        const id = idOfLine(line);
        if (id !== undefined && ids.has(id)) found.set(id, [...(found.get(id) ?? []), JSON.parse(line) as HistoryRecord]);
      }
    }
    return [...found.entries()]
      .map(([id, records]) => ({ id, records: records.sort((a, b) => a.at - b.at) }))
      .filter((message) => options.since === undefined || message.records.at(-1)!.at >= options.since)
      .sort((a, b) => b.records[0].at - a.records[0].at)
      .slice(0, limit);
  }

  async *#matching(log: SegmentLog, query: HistoryQuery, fromDay: string | undefined): AsyncGenerator<HistoryRecord> {
    for await (const line of log.lines(fromDay)) {
      // Most lines do not contain the needle at all; only those are parsed.
      if (!line.toLowerCase().includes(query.needle)) continue;
      const record = JSON.parse(line) as HistoryRecord;
      if (recordMatches(record, query)) yield record;
    }
  }
}
