import { decodeRecord, FRAME_HEADER_BYTES, type JournalRecord, nextRecordAt, payloadAt } from './journal-record.js';

/** Bytes of a segment that are not whole records: a torn tail (a crash mid-write), or damage in the middle. */
export interface Damage {
  readonly offset: number;
  readonly length: number;
  /** Nothing whole follows: the tail of the last write, torn by a crash (or a truncated file). */
  readonly tail: boolean;
}

/**
 * Reads a segment's records in order. A stretch that is not a whole record
 * (bad magic, a length past the end, a wrong checksum) is skipped up to the
 * next whole record, and reported: at the end of a segment it is a torn or
 * truncated tail, expected after a crash; before other records it is damage
 * (a disk that changed bytes), and what it held is lost.
 */
export function scanSegment(bytes: Buffer, onRecord: (record: JournalRecord, offset: number, length: number) => void): Damage[] {
  const damage: Damage[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const payload = payloadAt(bytes, offset);
    let record: JournalRecord | undefined;
    if (payload !== undefined) {
      try {
        record = decodeRecord(payload);
      } catch {
        record = undefined;
      }
    }
    if (payload !== undefined && record !== undefined) {
      const length = FRAME_HEADER_BYTES + payload.length;
      onRecord(record, offset, length);
      offset += length;
      continue;
    }
    const next = nextRecordAt(bytes, offset + 1);
    const tail = next === -1;
    damage.push({ offset, length: (tail ? bytes.length : next) - offset, tail });
    if (tail) break;
    offset = next;
  }
  return damage;
}
