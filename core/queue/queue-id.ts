import { randomBytes } from 'node:crypto';

/**
 * Queue ids sort by time of creation (a base-36 millisecond timestamp),
 * carry 64 random bits so ids from several nodes never collide, and are
 * safe as file names and Redis keys: `mi5k2w3c0-9f3b1c0d2a7e4f10`.
 */
export function newQueueId(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomBytes(8).toString('hex')}`;
}

const QUEUE_ID = /^[0-9a-z]{9}-[0-9a-f]{16}$/;

export function isQueueId(value: string): boolean {
  return QUEUE_ID.test(value);
}
