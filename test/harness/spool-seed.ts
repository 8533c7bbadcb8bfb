import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newQueueId } from '../../core/queue/queue-id.js';
import { type StoredMessage, withTrailer } from '../../plugins/queue-spool/spool-files.js';

export interface SeedOptions {
  /** Bytes of body per message (default 1 KiB). */
  readonly bodyBytes?: number;
  /** Distinct destination domains the recipients spread over (default 50). */
  readonly domains?: number;
  /** Epoch ms the messages are due again (default a day from now). */
  readonly dueAt?: number;
}

/**
 * Writes `count` deferred messages straight into a queue-spool directory
 * (`<queueDir>/messages/<id>.msg`, as queue-spool stores them: the bytes as
 * received, the record, the trailer), each tried once and due again later.
 * Much faster than enqueueing and deferring each one (no fsync, no server),
 * for tests and benchmarks of a big queue; what a server recovers from them
 * is the same as from a queue it filled itself.
 */
export function seedDeferredMessages(queueDir: string, count: number, options: SeedOptions = {}): string[] {
  const messages = join(queueDir, 'messages');
  mkdirSync(messages, { recursive: true });
  const now = Date.now();
  const dueAt = options.dueAt ?? now + 86_400_000;
  const domains = options.domains ?? 50;
  const body = `${'x'.repeat(76)}\r\n`.repeat(Math.ceil((options.bodyBytes ?? 1024) / 78)).slice(0, options.bodyBytes ?? 1024);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    // Received over the last hour, in order; ids from the same millisecond differ in their random part.
    const receivedAt = now - 3_600_000 + Math.floor((i * 3_600_000) / count);
    const id = newQueueId(receivedAt);
    const headers = `Received: from client.example ([192.0.2.1]) by mx.petrel.test with ESMTP id ${id}\r\nFrom: <sender@origin.example>\r\nTo: <user${i}@dest${i % domains}.example>\r\nSubject: seeded ${i}\r\nMessage-ID: <${id}@origin.example>\r\n\r\n`;
    const received = Buffer.from(headers + body);
    const record: StoredMessage = {
      format: 1,
      id,
      envelope: { from: 'sender@origin.example', smtpUtf8: false, bodyType: '8bitmime', requireTls: false },
      recipients: [{ address: `user${i}@dest${i % domains}.example`, status: 'deferred', attempts: 1, lastReply: '451 4.4.1 try again later', updatedAt: receivedAt + 1_000 }],
      origin: { remoteAddress: '192.0.2.1', helo: 'client.example', listener: 'mx' },
      size: received.length,
      receivedAt,
      nextAttemptAt: dueAt,
      attempts: 1,
      held: false,
      messageId: `<${id}@origin.example>`,
      headerBlock: Buffer.from(headers).toString('base64'),
      bodyOffset: Buffer.byteLength(headers),
    };
    writeFileSync(join(messages, `${id}.msg`), Buffer.concat([received, withTrailer(record, received.length)]));
    ids.push(id);
  }
  return ids;
}
