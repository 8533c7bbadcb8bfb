import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import type { DeliveryConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { MessageOrigin, Queue, QueuedMessage } from '../queue/contract.js';
import { newQueueId } from '../queue/queue-id.js';
import type { Spool } from '../spool/spool.js';
import { buildDsn, type DsnAction, type DsnRecipient } from './dsn.js';
import { readHeaderBlock } from './outgoing-content.js';

/** RFC 3461 NOTIFY keyword for each report action. */
const NOTIFY_KEYWORD: Record<DsnAction, string> = { failed: 'FAILURE', delayed: 'DELAY', delivered: 'SUCCESS', relayed: 'SUCCESS' };

export interface BouncerOptions {
  readonly hostname: string;
  readonly bounces: DeliveryConfig['bounces'];
  /** Until when a delayed message is retried (for Will-Retry-Until). */
  readonly expiresAt: (message: QueuedMessage) => number;
}

/**
 * Decides who gets a delivery status notification and queues it like any
 * other message (so it is retried, expires and survives crashes the same
 * way). The rules, in order:
 *
 * - a recipient's NOTIFY decides (NEVER: nothing; a list: only those
 *   events); without NOTIFY, failures and delays are reported, successes not;
 * - a message from the null sender is never bounced to its sender: its
 *   failure is a double bounce, sent to `delivery.bounces.postmaster` or
 *   dropped with a log line; a failed postmaster notice is always dropped;
 * - delay warnings and success reports carry only the headers of the
 *   original; failures carry what RET asks for (default: the whole message
 *   up to `returnFullUpTo`, else its headers).
 */
export class Bouncer {
  constructor(
    private readonly queue: () => Queue,
    private readonly spool: Spool,
    private readonly clock: Clock,
    private readonly options: BouncerOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Reports on `recipients` of `message`; returns the id of the queued DSN, if
   * one was made. `headers` is for a message that never reached the queue (a
   * maildrop file refused at pickup): its header block, returned instead of
   * what the queue holds.
   */
  async report(message: QueuedMessage, recipients: readonly DsnRecipient[], headers?: Buffer): Promise<string | undefined> {
    const wanted = recipients.filter((r) => this.#wants(message, r));
    if (wanted.length === 0) return undefined;
    const log = this.log.child({ qid: message.id });
    if (message.envelope.from === '') {
      const failed = wanted.filter((r) => r.action === 'failed');
      if (failed.length === 0) return undefined;
      const postmaster = this.options.bounces.postmaster;
      if (message.origin.generated === 'postmaster' || postmaster === undefined) {
        log.warn(
          { rcpt: failed.map((r) => r.address), reason: message.origin.generated === 'postmaster' ? 'postmaster notice failed' : 'no postmaster configured' },
          'double bounce dropped: a message from the null sender could not be delivered',
        );
        return undefined;
      }
      return this.#send(message, failed, postmaster, 'postmaster', headers);
    }
    return this.#send(message, wanted, message.envelope.from, 'dsn', headers);
  }

  #wants(message: QueuedMessage, recipient: DsnRecipient): boolean {
    const notify = message.recipients.find((r) => r.address === recipient.address)?.notify;
    if (notify && notify.length > 0) {
      return !notify.includes('NEVER') && notify.includes(NOTIFY_KEYWORD[recipient.action]);
    }
    return recipient.action === 'failed' || recipient.action === 'delayed';
  }

  async #send(message: QueuedMessage, recipients: readonly DsnRecipient[], to: string, generated: 'dsn' | 'postmaster', headers: Buffer | undefined): Promise<string> {
    const now = this.clock.now();
    const failure = recipients.some((r) => r.action === 'failed');
    const full = headers === undefined && failure && this.#returnsFullMessage(message);
    const content: Readable | Buffer = headers ?? (full ? await this.queue().read(message.id) : await readHeaderBlock(await this.queue().read(message.id)));
    const { bounces } = this.options;
    const from = bounces.from.includes('@') ? bounces.from : `${bounces.from}@${this.options.hostname}`;
    const dsn = buildDsn({
      reportingMta: this.options.hostname,
      from,
      to,
      message,
      recipients,
      returnContent: full ? 'full' : 'headers',
      original: content,
      willRetryUntil: recipients.some((r) => r.action === 'delayed') ? this.options.expiresAt(message) : undefined,
      now,
      toPostmaster: generated === 'postmaster',
    });
    const id = newQueueId(now);
    const received = await this.spool.receive(id, dsn, { maxBytes: Number.MAX_SAFE_INTEGER, maxHeaderBytes: 1 << 20 });
    if (received.kind !== 'received') throw new Error(`the DSN for ${message.id} came out malformed (${received.kind})`);
    const origin: MessageOrigin = { remoteAddress: '127.0.0.1', listener: 'internal', generated };
    try {
      await this.queue().enqueue({
        id,
        envelope: {
          from: '',
          smtpUtf8: message.envelope.smtpUtf8,
          bodyType: full ? message.envelope.bodyType : '7bit',
          requireTls: false,
        },
        recipients: [{ address: to }],
        origin,
        receivedAt: now,
        headerBlock: received.message.headers.toBuffer(),
        file: received.message.file,
        messageId: received.message.headers.getFirst('message-id'),
      });
    } finally {
      await this.spool.discard(received.message.file.path);
    }
    this.log.info(
      { qid: message.id, dsn: id, to, rcpt: recipients.map((r) => r.address), actions: [...new Set(recipients.map((r) => r.action))], generated },
      generated === 'postmaster' ? 'double bounce sent to the postmaster' : 'delivery status notification queued',
    );
    return id;
  }

  #returnsFullMessage(message: QueuedMessage): boolean {
    // RFC 8689 5: a report about a REQUIRETLS message returns its headers only (as RET=HDRS),
    // since the report itself goes out without REQUIRETLS (a null sender's mail that fails is lost).
    if (message.envelope.requireTls) return false;
    const ret = message.envelope.dsn?.ret;
    if (ret === 'HDRS') return false;
    if (ret === 'FULL') return true;
    return message.size <= this.options.bounces.returnFullUpTo;
  }
}
