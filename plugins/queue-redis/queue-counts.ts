import type { QueueCounts, QueuedMessage, QueueState, RedisClient } from 'petrel';
import { countMessages } from 'petrel/queue';
import { COUNT } from './scripts.js';

/** A message's share of the counters: its state and the domain of each open recipient. */
export interface Share {
  readonly state: QueueState;
  readonly domains: readonly string[];
}

const STATES: readonly QueueState[] = ['active', 'deferred', 'held'];

/** The COUNT script, as ioredis defines it on the client. */
type CountingClient = RedisClient & { petrelQueueCount(key: string, ...fieldsAndDeltas: (string | number)[]): Promise<'ok'> };

/**
 * The queue's counters, in one Redis hash that every node updates
 * (`<prefix>counts`: `s:<state>`, and `r:<domain>` / `m:<domain>` for open
 * recipients and messages by destination). A node moves a message's share
 * right after the script that changed the message, using what the script
 * answered (a repeated call answers 'again' and is not counted twice).
 *
 * They are not in the scripts themselves: a script touches only its
 * message's key, which on a Cluster lives in another slot than the
 * counters. So a node that dies (or loses Redis) between a script and its
 * counter update leaves the counts off by that message; they are rebuilt
 * from a full listing when the hash is missing (an empty queue, or one from before counters),
 * and `DEL <prefix>counts` followed by a node's restart rebuilds them on demand.
 */
export class RedisCounters {
  readonly #redis: CountingClient;

  constructor(
    redis: RedisClient,
    private readonly key: string,
  ) {
    redis.defineCommand('petrelQueueCount', { numberOfKeys: 1, lua: COUNT });
    this.#redis = redis as CountingClient;
  }

  /** Takes `before` away and adds `after` (either may be absent: a new or a removed message). */
  async change(before: Share | undefined, after: Share | undefined): Promise<void> {
    const deltas = new Map<string, number>();
    const add = (share: Share | undefined, sign: 1 | -1) => {
      if (!share) return;
      deltas.set(`s:${share.state}`, (deltas.get(`s:${share.state}`) ?? 0) + sign);
      share.domains.forEach((domain, index) => {
        deltas.set(`r:${domain}`, (deltas.get(`r:${domain}`) ?? 0) + sign);
        if (share.domains.indexOf(domain) === index) deltas.set(`m:${domain}`, (deltas.get(`m:${domain}`) ?? 0) + sign);
      });
    };
    add(before, -1);
    add(after, 1);
    const changed = [...deltas].filter(([, delta]) => delta !== 0).flat();
    if (changed.length > 0) await this.#redis.petrelQueueCount(this.key, ...changed);
  }

  async read(): Promise<QueueCounts> {
    const fields = await this.#redis.hgetall(this.key);
    const states: Record<QueueState, number> = { active: 0, deferred: 0, held: 0 };
    const destinations: Record<string, { messages: number; recipients: number }> = {};
    for (const state of STATES) states[state] = Math.max(0, Number(fields[`s:${state}`] ?? 0));
    for (const [field, value] of Object.entries(fields)) {
      if (!field.startsWith('r:') || Number(value) <= 0) continue;
      const domain = field.slice(2);
      destinations[domain] = { messages: Math.max(0, Number(fields[`m:${domain}`] ?? 0)), recipients: Number(value) };
    }
    return { states, destinations };
  }

  /** Counts a full listing into the hash when there is none (an empty queue, or the first start of a queue that had no counters). */
  async rebuildIfMissing(list: () => Promise<QueuedMessage[]>): Promise<void> {
    if ((await this.#redis.exists(this.key)) === 1) return;
    const counts = countMessages(await list());
    const fields: Record<string, number> = {};
    for (const state of STATES) if (counts.states[state] > 0) fields[`s:${state}`] = counts.states[state];
    for (const [domain, entry] of Object.entries(counts.destinations)) {
      fields[`r:${domain}`] = entry.recipients;
      fields[`m:${domain}`] = entry.messages;
    }
    // Zero counters are not stored (COUNT deletes them too): an empty queue has no counters key.
    if (Object.keys(fields).length > 0) await this.#redis.hset(this.key, fields);
  }
}

