import type { HistoryRecord } from './history-record.js';

/** The longest line a record may take in the history files. */
export const MAX_RECORD_BYTES = 256 * 1024;

/** A record this short (in UTF-16 units, so at most 3 bytes each) is kept as it is: the common case costs one stringify. */
const KEPT_WHOLE = 16 * 1024;

/** Cut lengths, tried in order until the record fits; the last always does (20 lists of 20 strings of 20 characters). */
const PASSES = [
  { text: 1000, items: 1000 },
  { text: 100, items: 100 },
  { text: 20, items: 20 },
] as const;

/**
 * A record as a line of the history: at most MAX_RECORD_BYTES, whatever a
 * client or a remote server sent. Much of a record comes from outside (a
 * Message-ID as long as the header limit, remote replies up to nodemailer's
 * 1 MB, plugin notes, as many recipients as limits.recipients allows), so a
 * record that is not small has each string cut at 1000 characters (a
 * Message-ID may be 998, an SMTP reply line 512) and each list at 1000
 * entries, and harder if it is still too big. A record that was cut says
 * so (`truncated`); its first entries stay, so it is still found by its id,
 * its sender and its first recipients.
 */
export function boundedLine(record: HistoryRecord): string {
  const line = JSON.stringify(record);
  if (line.length <= KEPT_WHOLE) return line;
  let shortened = line;
  for (const limits of PASSES) {
    let cut = false;
    shortened = JSON.stringify(record, (_key, value: unknown) => {
      if (typeof value === 'string' && value.length > limits.text) {
        cut = true;
        return `${value.slice(0, limits.text)}…`;
      }
      if (Array.isArray(value) && value.length > limits.items) {
        cut = true;
        return value.slice(0, limits.items);
      }
      return value;
    });
    if (cut) shortened = `${shortened.slice(0, -1)},"truncated":true}`;
    if (Buffer.byteLength(shortened) <= MAX_RECORD_BYTES) return shortened;
  }
  return shortened;
}
