import { close, open, read } from 'node:fs';
import { promisify } from 'node:util';
import { decodeRecord, type JournalRecord, payloadAt } from './journal-record.js';
import type { Location } from './journal-writer.js';

const openAsync = promisify(open);
const readAsync = promisify(read);
const closeAsync = promisify(close);

/**
 * Reads back the one record at `location` (a delivery's bytes, a record not
 * kept in memory) and checks it. The segment is opened for each read: a
 * segment may be deleted at any time once compaction has moved its records,
 * and an open descriptor keeps reading what it opened.
 */
export async function readRecord(path: string, location: Location): Promise<JournalRecord> {
  const fd = await openAsync(path, 'r');
  try {
    const bytes = Buffer.allocUnsafe(location.length);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await readAsync(fd, bytes, done, bytes.length - done, location.offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    const payload = payloadAt(bytes.subarray(0, done), 0);
    if (payload === undefined) throw new Error(`no whole journal record at ${path}:${location.offset}`);
    return decodeRecord(payload);
  } finally {
    await closeAsync(fd);
  }
}
