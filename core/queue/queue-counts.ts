import { domainOf } from '../delivery/outbound-hooks.js';
import { stateOf, type QueuedMessage, type QueuedRecipient, type QueueCounts, type QueueState } from './contract.js';

/** The destination domain of each open (pending or deferred) recipient, in order, repeats kept. */
export function openDomains(recipients: readonly QueuedRecipient[]): string[] {
  const domains: string[] = [];
  for (const recipient of recipients) {
    if (recipient.status === 'pending' || recipient.status === 'deferred') domains.push(domainOf(recipient.address));
  }
  return domains;
}

/**
 * Shares equal destination lists between index entries: most messages go to
 * one of a few domain lists, so a queue of a million keeps a few arrays, not
 * a million. Past `max` distinct lists the table starts over (entries keep
 * the arrays they have; only sharing for new ones is lost).
 */
export class DomainLists {
  readonly #lists = new Map<string, readonly string[]>();

  constructor(private readonly max = 10_000) {}

  /** The open recipients' domains of `recipients`, as a shared array. */
  of(recipients: readonly QueuedRecipient[]): readonly string[] {
    const domains = openDomains(recipients);
    const key = domains.join(' ');
    const known = this.#lists.get(key);
    if (known) return known;
    if (this.#lists.size >= this.max) this.#lists.clear();
    this.#lists.set(key, domains);
    return domains;
  }
}

/**
 * The counters behind `Queue.counts()`: a queue adds a message's share when
 * it arrives or changes (its state, the domains of its open recipients) and
 * takes the old share away, so the counts are always those of the whole
 * queue without looking at it.
 */
export class QueueCounter {
  readonly #states: Record<QueueState, number> = { active: 0, deferred: 0, held: 0 };
  readonly #destinations = new Map<string, { messages: number; recipients: number }>();

  /** Adds (`sign` 1) or takes away (-1) one message's share. `domains` as openDomains gives them. */
  change(state: QueueState, domains: readonly string[], sign: 1 | -1): void {
    this.#states[state] += sign;
    for (let index = 0; index < domains.length; index++) {
      const domain = domains[index];
      let entry = this.#destinations.get(domain);
      if (!entry) {
        entry = { messages: 0, recipients: 0 };
        this.#destinations.set(domain, entry);
      }
      entry.recipients += sign;
      // A message counts once per domain: at the domain's first occurrence in its list.
      if (domains.indexOf(domain) === index) entry.messages += sign;
      if (entry.recipients <= 0) this.#destinations.delete(domain);
    }
  }

  /** A message's share, from the message as listed. */
  changeMessage(message: QueuedMessage, sign: 1 | -1): void {
    this.change(stateOf(message), openDomains(message.recipients), sign);
  }

  counts(): QueueCounts {
    return { states: { ...this.#states }, destinations: Object.fromEntries([...this.#destinations].map(([domain, entry]) => [domain, { ...entry }])) };
  }
}

/** The counts of a listing: what `counts()` must equal, and the core's fallback for a queue without it. */
export function countMessages(messages: readonly QueuedMessage[]): QueueCounts {
  const counter = new QueueCounter();
  for (const message of messages) counter.changeMessage(message, 1);
  return counter.counts();
}
