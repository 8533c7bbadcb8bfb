import type { HistoryRecord } from './history-record.js';

const MINUTE_MS = 60_000;
/** Minutes kept for the overview charts. */
export const ACTIVITY_MINUTES = 60;
/** Distinct deferral reasons counted at most (the rest are "other"). */
const MAX_REASONS = 200;
/** Characters of a deferral reply read for its reason (kept: 120, after ids and addresses became `…`). */
const REPLY_READ = 400;

export interface MinuteCounts {
  /** Epoch ms of the minute's start. */
  readonly minute: number;
  readonly received: number;
  readonly refused: number;
  readonly delivered: number;
  readonly deferred: number;
  readonly bounced: number;
}

export interface Activity {
  readonly minutes: readonly MinuteCounts[];
  /** Deferral replies of the last hour, most frequent first. */
  readonly deferrals: readonly { readonly reason: string; readonly count: number }[];
}

/**
 * Messages in and out per minute for the last hour, and the commonest
 * reasons for deferral, counted from the history records as they are
 * written (the console's overview). Memory only: a restart starts at zero.
 */
export class RecentActivity {
  readonly #minutes = new Map<number, { received: number; refused: number; delivered: number; deferred: number; bounced: number }>();
  readonly #reasons = new Map<string, { count: number; last: number }>();

  constructor(private readonly now: () => number) {}

  count(record: HistoryRecord): void {
    if (record.t === 'received' && record.generated === undefined) this.#bucket(record.at).received++;
    else if (record.t === 'refused') this.#bucket(record.at).refused++;
    else if (record.t === 'settled') {
      const bucket = this.#bucket(record.at);
      for (const result of record.results) {
        bucket[result.status]++;
        if (result.status === 'deferred' && result.reply) this.#reason(result.reply, record.at);
      }
    }
  }

  snapshot(): Activity {
    const now = this.now();
    const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const minutes: MinuteCounts[] = [];
    for (let i = ACTIVITY_MINUTES - 1; i >= 0; i--) {
      const minute = current - i * MINUTE_MS;
      const counts = this.#minutes.get(minute);
      minutes.push({ minute, received: 0, refused: 0, delivered: 0, deferred: 0, bounced: 0, ...counts });
    }
    const since = now - ACTIVITY_MINUTES * MINUTE_MS;
    const deferrals = [...this.#reasons.entries()]
      .filter(([, entry]) => entry.last >= since)
      .map(([reason, entry]) => ({ reason, count: entry.count }))
      .sort((a, b) => b.count - a.count)
      .slice(0, 10);
    return { minutes, deferrals };
  }

  #bucket(at: number) {
    const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
    let bucket = this.#minutes.get(minute);
    if (!bucket) {
      bucket = { received: 0, refused: 0, delivered: 0, deferred: 0, bounced: 0 };
      this.#minutes.set(minute, bucket);
      const oldest = minute - ACTIVITY_MINUTES * MINUTE_MS;
      for (const key of this.#minutes.keys()) if (key <= oldest) this.#minutes.delete(key);
    }
    return bucket;
  }

  /**
   * Replies differ by queue ids, addresses and numbers; the reason is what is
   * left. The reply is cut before the patterns run: they backtrack over the
   * rest of the text at each position, and a remote server may send 1 MB.
   */
  #reason(reply: string, at: number): void {
    const reason = reply
      .slice(0, REPLY_READ)
      .replace(/\[[^\]]*\]|\b\d{1,3}(\.\d{1,3}){3}\b|[0-9a-f]{8,}|\S+@\S+/gi, '…')
      .slice(0, 120);
    const entry = this.#reasons.get(reason);
    if (entry) {
      entry.count++;
      entry.last = at;
      return;
    }
    if (this.#reasons.size >= MAX_REASONS) {
      const since = this.now() - ACTIVITY_MINUTES * MINUTE_MS;
      for (const [key, value] of this.#reasons) if (value.last < since) this.#reasons.delete(key);
      if (this.#reasons.size >= MAX_REASONS) return;
    }
    this.#reasons.set(reason, { count: 1, last: at });
  }
}
