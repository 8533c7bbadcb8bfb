import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type Clock, duplicateClient, inject, injectable, type Lease, type Logger, type NewMessage, type PetrelConfig, type PluginMeta, type Queue, type QueueCounts, type QueuedMessage, type QueueFilter, type QueueState, type RedisClient, type SettleRequest, TOKENS, z } from 'petrel';
import { applyOutcomes, matchesFilter, openDomains, parseListCursor, stateOf } from 'petrel/queue';
import { checkPersistence } from './persistence-check.js';
import { RedisCounters, type Share } from './queue-counts.js';
import { ABANDON, CONFIRM, LEASE, REMOVE, SETTLE, STORE, UPDATE } from './scripts.js';

export const options = z.strictObject({
  prefix: z.string().default('queue:').describe('key prefix of the queue, after redis.keyPrefix; nodes sharing a queue use the same'),
  checkPersistence: z
    .boolean()
    .default(true)
    .describe('at start, read appendonly/appendfsync from every master and warn loudly when acknowledged mail could be lost'),
});

type Options = z.output<typeof options>;

/** The record without the fields kept separately in the hash (due time, held, lease). */
type StoredRecord = Omit<QueuedMessage, 'nextAttemptAt' | 'held'>;

/** What a script answers when Redis ran it after the caller's deadline (see scripts.ts). */
type Expired = ['expired'];
type LeaseReply = ['ok', string, string, string, string] | ['gone'] | ['unconfirmed'] | ['held'] | ['leased', string] | ['later', string] | Expired;

/** The scripts, as ioredis defines them on the client (defineCommand); the first argument is always the deadline. */
interface QueueCommands {
  petrelQueueStore(key: string, deadline: number, record: string, next: number, body: Buffer, ttlMs: number): Promise<['ok'] | ['exists'] | Expired>;
  petrelQueueConfirm(key: string, deadline: number): Promise<['ok', 'new'] | ['ok'] | ['gone'] | Expired>;
  petrelQueueLease(key: string, deadline: number, now: number, leaseMs: number, token: string, claim: '0' | '1'): Promise<LeaseReply>;
  petrelQueueSettle(key: string, deadline: number, token: string, record: string, next: number): Promise<['lost'] | ['deleted', string] | ['kept', string, string, 'again'?] | Expired>;
  petrelQueueAbandon(key: string, deadline: number, token: string, due: number): Promise<['lost'] | ['released', string, string, 'again'?] | Expired>;
  petrelQueueUpdate(key: string, deadline: number, ...fieldsAndValues: string[]): Promise<['gone'] | ['ok', string, string, string] | Expired>;
  petrelQueueRemove(key: string, deadline: number): Promise<['gone'] | ['removed', string, string] | Expired>;
}

/** Messages read per round while listing. */
const LIST_BATCH = 500;

/** redis.commandTimeout when the config has none (the schema's default). */
const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

/**
 * A queue in Redis that several Petrel nodes share. Each message is one
 * hash, `m:{<id>}` (the braces are a hash tag, so everything about one
 * message lives in one Cluster slot), changed only by Lua scripts that touch
 * that one key (scripts.ts). Two sorted sets index the queue: `due` (by the
 * time a message is due, or its lease deadline while it is leased) and `all`
 * (by arrival, for operators). A node that crashes mid-delivery leaves a
 * lease that runs out at its deadline; the message is then due again for
 * every node.
 *
 * No write outlives the call that made it: each script carries a deadline
 * (half of `redis.commandTimeout` from now) and does nothing when Redis runs
 * it later, and a new message is stored with a TTL that only its
 * confirmation, after the indexes, removes. So a client answered 451 while
 * Redis was away leaves nothing behind when Redis is back.
 *
 * New mail wakes every node at once through a pub/sub channel, on a
 * connection of its own (a subscribed connection can do nothing else).
 */
@injectable()
export default class RedisQueue implements Queue {
  static readonly meta: PluginMeta = {
    name: 'queue-redis',
    version: '1.0.0',
    description: 'queue in Redis, shared by many nodes (Lua per message, leases with deadlines)',
    provides: ['queue'],
  };
  static readonly options = options;

  readonly #redis: RedisClient & QueueCommands;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #listeners = new Set<() => void>();
  readonly #counts: RedisCounters;
  /** How long after sending it a script may still run (ms): half the command timeout, so its answer is awaited. */
  readonly #patience: number;
  /** How long a stored message waits for its confirmation before Redis drops it (ms). */
  readonly #unconfirmedTtl: number;
  #subscriber: RedisClient | undefined;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Redis) redis: RedisClient,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#prefix = opts.prefix;
    // ioredis puts keyPrefix on keys but not on pub/sub channels: add it here.
    this.#channel = `${config.redis?.keyPrefix ?? ''}${opts.prefix}wake`;
    const commandTimeout = config.redis?.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#patience = Math.ceil(commandTimeout / 2);
    // From STORE to CONFIRM there are at most three commands, each allowed commandTimeout.
    this.#unconfirmedTtl = commandTimeout * 3;
    redis.defineCommand('petrelQueueStore', { numberOfKeys: 1, lua: STORE });
    redis.defineCommand('petrelQueueConfirm', { numberOfKeys: 1, lua: CONFIRM });
    redis.defineCommand('petrelQueueLease', { numberOfKeys: 1, lua: LEASE });
    redis.defineCommand('petrelQueueSettle', { numberOfKeys: 1, lua: SETTLE });
    redis.defineCommand('petrelQueueAbandon', { numberOfKeys: 1, lua: ABANDON });
    redis.defineCommand('petrelQueueUpdate', { numberOfKeys: 1, lua: UPDATE });
    redis.defineCommand('petrelQueueRemove', { numberOfKeys: 1, lua: REMOVE });
    this.#redis = redis as RedisClient & QueueCommands;
    this.#counts = new RedisCounters(redis, this.#key('counts'));
  }

  async start(): Promise<void> {
    if (this.opts.checkPersistence) await checkPersistence(this.#redis, this.log);
    const subscriber = duplicateClient(this.#redis);
    subscriber.on('error', (error: Error) => this.log.warn({ err: error }, `redis subscriber: ${error.message}`));
    subscriber.on('message', () => this.#notifyDue());
    await subscriber.subscribe(this.#channel);
    this.#subscriber = subscriber;
    await this.#counts.rebuildIfMissing(() => this.list());
    this.log.info({ prefix: this.#prefix, messages: await this.#redis.zcard(this.#key('all')) }, 'queue ready');
  }

  async close(): Promise<void> {
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }

  async enqueue(message: NewMessage): Promise<void> {
    const content = message.file.content ?? (await readFile(message.file.path));
    const body = Buffer.concat([message.headerBlock, content.subarray(message.file.bodyOffset)]);
    const record: StoredRecord = {
      id: message.id,
      envelope: message.envelope,
      recipients: message.recipients.map((r) => ({ ...r, status: 'pending', attempts: 0 })),
      origin: message.origin,
      size: message.file.size,
      receivedAt: message.receivedAt,
      attempts: 0,
      ...(message.messageId ? { messageId: message.messageId } : {}),
    };
    // The message (expiring), the indexes, then the confirmation that keeps it: if anything
    // fails on the way (the client gets 451), the message expires by itself and the index
    // entries, pointing at nothing, are dropped by whoever finds them.
    const key = this.#messageKey(message.id);
    const stored = await this.#redis.petrelQueueStore(key, this.#deadline(), JSON.stringify(record), message.receivedAt, body, this.#unconfirmedTtl);
    if (stored[0] !== 'ok') throw scriptRefused('store', message.id, stored[0]);
    await Promise.all([this.#redis.zadd(this.#key('all'), message.receivedAt, message.id), this.#redis.zadd(this.#key('due'), message.receivedAt, message.id)]);
    const confirmed = await this.#redis.petrelQueueConfirm(key, this.#deadline());
    if (confirmed[0] !== 'ok') throw scriptRefused('confirm', message.id, confirmed[0]);
    if (confirmed[1] === 'new') await this.#counts.change(undefined, shareOf(record, false));
    await this.#wakeAll();
  }

  async lease(limit: number, leaseMs: number): Promise<Lease[]> {
    const leases: Lease[] = [];
    // Several nodes race for the same head of the index; losers correct the
    // index and look further, a few rounds at most.
    for (let round = 0; round < 4 && leases.length < limit; round++) {
      const now = this.clock.now();
      const candidates = await this.#redis.zrangebyscore(this.#key('due'), '-inf', now, 'LIMIT', 0, (limit - leases.length) * 2);
      if (candidates.length === 0) break;
      for (const id of candidates) {
        if (leases.length >= limit) break;
        const lease = await this.#tryLease(id, now, leaseMs, false);
        if (lease) leases.push(lease);
      }
    }
    return leases;
  }

  async claim(id: string, leaseMs: number): Promise<Lease | undefined> {
    return this.#tryLease(id, this.clock.now(), leaseMs, true);
  }

  async #tryLease(id: string, now: number, leaseMs: number, claim: boolean): Promise<Lease | undefined> {
    const token = randomUUID();
    const reply = await this.#redis.petrelQueueLease(this.#messageKey(id), this.#deadline(), now, leaseMs, token, claim ? '1' : '0');
    switch (reply[0]) {
      case 'expired':
        throw scriptRefused('lease', id, reply[0]);
      case 'unconfirmed':
        // Being stored right now (or its enqueue failed and it is about to expire): not ours to deliver yet.
        return undefined;
      case 'ok': {
        const [, record, deadline, held, next] = reply;
        // While leased the message is due again at its deadline (if its holder dies).
        if (held !== '1') await this.#redis.zadd(this.#key('due'), Number(deadline), id);
        const message = toMessage(JSON.parse(record) as StoredRecord, Number(next), held === '1');
        return { message, token, deadline: Number(deadline) };
      }
      case 'gone':
        await this.#unindex(id);
        return undefined;
      case 'held':
        await this.#redis.zrem(this.#key('due'), id);
        return undefined;
      case 'leased':
      case 'later':
        // The index was behind the truth (a node crashed between script and index update): correct it.
        await this.#redis.zadd(this.#key('due'), 'XX', Number(reply[1]), id);
        return undefined;
    }
  }

  async read(id: string): Promise<Readable> {
    const body = await this.#redis.hgetBuffer(this.#messageKey(id), 'body');
    if (!body) throw new Error(`message ${id} is not in the queue`);
    return Readable.from([body]);
  }

  async settle(lease: Lease, request: SettleRequest): Promise<boolean> {
    const now = this.clock.now();
    const { recipients, open } = applyOutcomes(lease.message.recipients, request.outcomes, now);
    const { nextAttemptAt: _next, held: _held, ...stored } = lease.message;
    const next = request.nextAttemptAt ?? now;
    const record = open ? JSON.stringify({ ...stored, recipients, attempts: lease.message.attempts + 1 } satisfies StoredRecord) : '';
    const reply = await this.#redis.petrelQueueSettle(this.#messageKey(lease.message.id), this.#deadline(), lease.token, record, next);
    if (reply[0] === 'expired') throw scriptRefused('settle', lease.message.id, reply[0]);
    if (reply[0] === 'lost') return false;
    if (reply[0] === 'deleted' || reply[3] !== 'again') {
      const held = reply[1] === '1';
      const after = reply[0] === 'kept' ? { state: held ? 'held' : 'deferred', domains: openDomains(recipients) } as const : undefined;
      await this.#counts.change(shareOf(lease.message, held), after);
    }
    if (reply[0] === 'deleted') {
      // Entries left behind (Redis went away just now) point at nothing; whoever meets them drops them.
      await this.#unindex(lease.message.id).catch(() => undefined);
    } else if (reply[1] !== '1') {
      // If this fails, the caller settles again; the script recognises the repeat and answers the same.
      await this.#redis.zadd(this.#key('due'), Number(reply[2]), lease.message.id);
    }
    return true;
  }

  async abandon(lease: Lease, dueAt?: number): Promise<void> {
    const now = this.clock.now();
    const due = dueAt === undefined ? now : Math.max(now, dueAt);
    const reply = await this.#redis.petrelQueueAbandon(this.#messageKey(lease.message.id), this.#deadline(), lease.token, due);
    if (reply[0] === 'expired') throw scriptRefused('abandon', lease.message.id, reply[0]);
    if (reply[0] === 'released' && reply[1] !== '1') {
      // As in settle: a failure here makes the caller give the lease back again, which the script recognises.
      await this.#redis.zadd(this.#key('due'), Number(reply[2]), lease.message.id);
      // Due later: every node's scheduler finds it through nextDueAt when it is; no wake-up needed now.
      if (due <= now) await this.#wakeAll();
    }
  }

  onDue(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async nextDueAt(): Promise<number | undefined> {
    const [, score] = await this.#redis.zrange(this.#key('due'), '0', '0', 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  /**
   * Walks the arrival index from the cursor in batches, reading each
   * message, until the page (`limit`) is full: a page costs about its own
   * size in commands, not the queue's.
   */
  async list(filter: QueueFilter = {}): Promise<QueuedMessage[]> {
    const now = this.clock.now();
    const limit = filter.limit ?? Number.POSITIVE_INFINITY;
    const from = filter.after === undefined ? '-inf' : String(parseListCursor(filter.after).receivedAt);
    const messages: QueuedMessage[] = [];
    for (let offset = 0; messages.length < limit; ) {
      const ids = await this.#redis.zrangebyscore(this.#key('all'), from, '+inf', 'LIMIT', offset, LIST_BATCH);
      offset += ids.length;
      // One command per message (not a pipeline): on a Cluster the messages live in different slots.
      const found = await Promise.all(ids.map((id) => this.inspect(id)));
      for (const [index, message] of found.entries()) {
        if (!message) {
          // An entry for a message that is gone: dropped, and the next batch starts one earlier.
          await this.#unindex(ids[index]);
          offset--;
          continue;
        }
        if (messages.length < limit && matchesFilter(message, filter, now)) messages.push(message);
      }
      if (ids.length < LIST_BATCH) break;
    }
    return messages;
  }

  async inspect(id: string): Promise<QueuedMessage | undefined> {
    const [record, next, held] = await this.#redis.hmget(this.#messageKey(id), 'record', 'next', 'held');
    if (!record) return undefined;
    return toMessage(JSON.parse(record) as StoredRecord, Number(next), held === '1');
  }

  async retry(id: string): Promise<boolean> {
    const now = this.clock.now();
    const exists = await this.#update(id, 'next', String(now));
    if (!exists) return false;
    const message = await this.inspect(id);
    if (message && !message.held) {
      await this.#redis.zadd(this.#key('due'), now, id);
      await this.#wakeAll();
    }
    return true;
  }

  async hold(id: string): Promise<boolean> {
    const exists = await this.#update(id, 'held', '1');
    if (!exists) return false;
    await this.#redis.zrem(this.#key('due'), id);
    return true;
  }

  async release(id: string): Promise<boolean> {
    const now = this.clock.now();
    // Index first: a crash after it leaves a held message in the index, which
    // a lease attempt removes again; the other order could strand a released message.
    await this.#redis.zadd(this.#key('due'), now, id);
    const exists = await this.#update(id, 'held', '', 'next', String(now));
    if (!exists) {
      await this.#unindex(id);
      return false;
    }
    await this.#wakeAll();
    return true;
  }

  async remove(id: string): Promise<boolean> {
    const reply = await this.#redis.petrelQueueRemove(this.#messageKey(id), this.#deadline());
    if (reply[0] === 'expired') throw scriptRefused('remove', id, reply[0]);
    if (reply[0] === 'removed') await this.#counts.change(shareOf(JSON.parse(reply[1]) as StoredRecord, reply[2] === '1'), undefined);
    await this.#unindex(id);
    return reply[0] === 'removed';
  }

  async stats(): Promise<Record<QueueState, number>> {
    return (await this.#counts.read()).states;
  }

  /** From counters in Redis, shared by every node (see queue-counts.ts). */
  counts(): Promise<QueueCounts> {
    return this.#counts.read();
  }

  /** Sets fields of an existing message (UPDATE) and moves its share of the counters; false when there is no such message. */
  async #update(id: string, ...fieldsAndValues: string[]): Promise<boolean> {
    const reply = await this.#redis.petrelQueueUpdate(this.#messageKey(id), this.#deadline(), ...fieldsAndValues);
    if (reply[0] === 'expired') throw scriptRefused('update', id, reply[0]);
    if (reply[0] !== 'ok') return false;
    const [, , record, heldBefore] = reply;
    const heldField = fieldsAndValues.indexOf('held');
    if (heldField >= 0 && heldField % 2 === 0) {
      const heldAfter = fieldsAndValues[heldField + 1] === '1';
      const stored = JSON.parse(record) as StoredRecord;
      if (heldAfter !== (heldBefore === '1')) await this.#counts.change(shareOf(stored, heldBefore === '1'), shareOf(stored, heldAfter));
    }
    return true;
  }

  /** The deadline a script sent now carries (epoch ms, Redis's clock: see scripts.ts). */
  #deadline(): number {
    return Date.now() + this.#patience;
  }

  async #unindex(id: string): Promise<void> {
    await this.#redis.zrem(this.#key('due'), id);
    await this.#redis.zrem(this.#key('all'), id);
  }

  async #wakeAll(): Promise<void> {
    this.#notifyDue();
    // Other nodes hear it through the channel (this node's subscriber too; a second wake-up is harmless).
    await this.#redis.publish(this.#channel, '1').catch((error: Error) => this.log.warn({ err: error }, 'could not publish a wake-up'));
  }

  #notifyDue(): void {
    for (const listener of this.#listeners) listener();
  }

  #key(name: 'due' | 'all' | 'counts'): string {
    return `${this.#prefix}${name}`;
  }

  #messageKey(id: string): string {
    return `${this.#prefix}m:{${id}}`;
  }
}

/** A script that did nothing: Redis ran it too late ('expired'), or the message was not as expected. */
function scriptRefused(what: string, id: string, answer: string): Error {
  const reason =
    answer === 'expired'
      ? 'Redis ran it after Petrel had stopped waiting for it (Redis was slow or away); nothing was changed'
      : answer === 'gone'
        ? 'the message expired before it was confirmed (Redis was slow or away)'
        : `unexpected answer "${answer}"`;
  return new Error(`queue-redis could not ${what} message ${id}: ${reason}`);
}

/** A message's share of the counters: its state and the domains of its open recipients. */
function shareOf(record: Pick<StoredRecord, 'attempts' | 'recipients'>, held: boolean): Share {
  return { state: stateOf({ held, attempts: record.attempts }), domains: openDomains(record.recipients) };
}

function toMessage(record: StoredRecord, nextAttemptAt: number, held: boolean): QueuedMessage {
  return { ...record, nextAttemptAt, held };
}
