import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../clock.js';
import type { DeliveryConfig } from '../config/schema.js';
import type { RegisteredHandler } from '../hooks/registry.js';
import type { RecipientFacts } from '../history/history-record.js';
import type { HistoryStore } from '../history/history-store.js';
import type { Logger } from '../log/logger.js';
import { AttemptObserver, runInAttempt } from '../observe/attempt-observer.js';
import { attachObserver } from '../observe/observers.js';
import { applyOutcomes } from '../queue/apply-outcomes.js';
import type { TraceHub } from '../trace/trace-hub.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Lease, Queue, QueuedRecipient, RecipientOutcome } from '../queue/contract.js';
import type { RedisClient } from '../redis/redis-client.js';
import { describeDuration } from '../util/describe-duration.js';
import type { Bouncer } from './bouncer.js';
import type { DeliveryTicket, LineSnapshot } from './destination-line.js';
import type { DsnRecipient } from './dsn.js';
import { domainOf, OutboundHookError, type OutboundHooks } from './outbound-hooks.js';
import { formatReply, parseReply, type Delivery, type DeliveryReply, type RecipientResult, type Route } from './outbound.js';
import { OutboundShaper } from './outbound-shaper.js';
import { OutgoingCopies } from './outgoing-copies.js';
import { RetrySchedule } from './retry-schedule.js';

export interface SchedulerDeps {
  readonly queue: Queue;
  readonly hooks: OutboundHooks;
  readonly bouncer: Bouncer;
  readonly config: DeliveryConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** The server's Redis client, for `delivery.shaping.store: redis`. */
  readonly redis?: RedisClient;
  /** Live traces of outbound connections go here (`petrel trace client`). */
  readonly trace?: TraceHub;
  /** Each attempt and its outcome are recorded here (`petrel queue show`). */
  readonly history?: HistoryStore;
}

/** The outcome of one recipient in one attempt, with what decided it. */
interface Settled {
  readonly recipient: QueuedRecipient;
  readonly result: RecipientResult;
  readonly route?: Route;
}

/** A group that did not go out this time: its message is due again at `at` (epoch ms), no attempt counted. */
interface Postponed {
  readonly postponedUntil: number;
}

/** A delivery that must start this close to its lease deadline could outlive the lease (and be sent twice). */
const LEASE_MARGIN_MS = 1_000;

const REPLIES = {
  noResult: { code: 451, enhanced: '4.3.0', text: 'delivery target gave no result for this recipient' },
  targetFailed: { code: 451, enhanced: '4.3.0', text: 'local error in delivery, will retry' },
  routeFailed: { code: 451, enhanced: '4.3.0', text: 'local error in routing, will retry' },
  noTarget: { code: 451, enhanced: '4.3.5', text: 'no delivery target for this route (configuration error)' },
  aborted: { code: 451, enhanced: '4.3.2', text: 'delivery interrupted by shutdown' },
  destinationBusy: { code: 451, enhanced: '4.4.5', text: 'destination busy (outbound shaping), not tried before the message expired' },
} as const satisfies Record<string, DeliveryReply>;

/**
 * Drives queued messages to a final state. It leases due messages from the
 * queue (up to `concurrency.total` at once), routes each open recipient,
 * delivers each route group through its target when outbound shaping lets
 * it (connections, rates and back-off per destination: OutboundShaper),
 * then records every recipient's outcome in the queue: delivered and bounced
 * recipients are done, deferred ones come back after the retry schedule's
 * wait, and a message still deferred at `expireAfter` bounces. A group whose
 * destination has no room for a while is postponed: the message goes back
 * to the queue, due when its turn is expected, without counting an attempt.
 *
 * It sleeps until the next message is due and wakes at once when the queue
 * reports new or retried mail (`queue.onDue`), so a fresh message starts its
 * first attempt within milliseconds. A failed attempt to reach the queue
 * (Redis down) is logged and retried with backoff; mail stays queued.
 */
export class DeliveryScheduler {
  #deps: SchedulerDeps;
  readonly #schedule: RetrySchedule;
  readonly #shaper: OutboundShaper;
  /** Attempts in flight, by lease token. */
  /**
   * Attempts running, by lease token, each with the outbound hooks it started
   * with: a reload while it runs must not switch it to other plugins halfway,
   * and the generation those hooks belong to keeps its plugins open until it ends.
   */
  readonly #inFlight = new Map<string, { readonly lease: Lease; readonly hooks: OutboundHooks; done: Promise<void> }>();
  /** Leases given back at shutdown: their late results are not recorded. */
  readonly #abandoned = new Set<string>();
  /** Leases whose result the queue could not take yet (see #untilRecorded): nothing new is leased meanwhile. */
  readonly #unrecorded = new Set<string>();
  readonly #shutdown = new AbortController();
  #running = false;
  #loop: Promise<void> | undefined;
  #poked = false;
  #wake: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  #backoff = 0;

  /** After a config reload: deliveries from now on run the new plugins' outbound hooks. */
  useHooks(hooks: OutboundHooks): void {
    this.#deps = { ...this.#deps, hooks };
  }

  /** The hooks a leased message's attempt runs on from start to end (see #inFlight). */
  #hooks(lease: Lease): OutboundHooks {
    return this.#inFlight.get(lease.token)?.hooks ?? this.#deps.hooks;
  }

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.#schedule = new RetrySchedule(deps.config);
    this.#shaper = new OutboundShaper({ config: deps.config, clock: deps.clock, log: deps.log.child({ component: 'shaping' }), redis: deps.redis });
  }

  /** Messages being delivered right now. */
  get active(): number {
    return this.#inFlight.size;
  }

  /** Destinations with deliveries running or waiting, or backed off (outbound shaping). */
  get destinations(): LineSnapshot[] {
    return this.#shaper.snapshot();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#shaper.start();
    this.#unsubscribe = this.#deps.queue.onDue(() => this.#poke());
    this.#loop = this.#run();
    this.#deps.log.info(
      {
        concurrency: this.#deps.config.concurrency,
        retry: this.#deps.config.retry,
        expireAfter: this.#deps.config.expireAfter,
        shaping: { store: this.#deps.config.shaping.store, rules: this.#deps.config.shaping.rules.length },
      },
      'delivery scheduler started',
    );
  }

  /**
   * Stops leasing, lets attempts in flight finish until `deadline` (epoch
   * ms), then aborts the rest and gives their leases back to the queue, so
   * they are due again at once (for this node after a restart, or another).
   */
  async stop(deadline: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unsubscribe?.();
    this.#poke();
    await this.#loop;
    // Groups waiting for their destination give their messages back now, due at once.
    await this.#shaper.close();
    const pending = [...this.#inFlight.values()];
    if (pending.length > 0) {
      const left = Math.max(0, deadline - Date.now());
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.all(pending.map((p) => p.done)).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), left);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) await this.#abandonAll();
    }
    this.#deps.log.info('delivery scheduler stopped');
  }

  async #abandonAll(): Promise<void> {
    const leases = [...this.#inFlight.values()].map((p) => p.lease);
    this.#deps.log.warn({ messages: leases.map((l) => l.message.id) }, `shutdown deadline reached: giving ${leases.length} deliveries back to the queue`);
    for (const lease of leases) this.#abandoned.add(lease.token);
    this.#shutdown.abort();
    await Promise.all(leases.map((lease) => this.#deps.queue.abandon(lease).catch(() => undefined)));
  }

  #poke(): void {
    this.#poked = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    const { queue, config, log } = this.#deps;
    while (this.#running) {
      this.#poked = false;
      // While the queue cannot record results (a full disk, Redis away), sending more mail would only pile up work to repeat.
      const free = this.#unrecorded.size > 0 ? 0 : config.concurrency.total - this.#inFlight.size;
      let leased = 0;
      if (free > 0) {
        try {
          const leases = await queue.lease(free, config.leaseTime);
          this.#backoff = 0;
          leased = leases.length;
          for (const lease of leases) this.#begin(lease);
        } catch (error) {
          this.#backoff = Math.min(Math.max(this.#backoff * 2, 250), 10_000);
          log.error({ err: error, code: 'PETREL_QUEUE_UNAVAILABLE' }, `cannot lease from the queue: ${(error as Error).message}; retrying in ${this.#backoff} ms`);
          await this.#sleep(this.#backoff);
          continue;
        }
        if (leased === free) continue; // there may be more due right now
      }
      await this.#sleep(free > 0 ? await this.#untilNextDue() : config.idlePoll);
    }
  }

  /** How long to sleep when nothing else is due: until the next message is, at most idlePoll. */
  async #untilNextDue(): Promise<number> {
    const { queue, clock, config } = this.#deps;
    const next = await queue.nextDueAt().catch(() => undefined);
    if (next === undefined) return config.idlePoll;
    // A due message we could not lease (another node has it) must not make us spin.
    return Math.min(config.idlePoll, Math.max(next - clock.now(), 25));
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#poked || !this.#running) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  #begin(lease: Lease): void {
    const hooks = this.#deps.hooks;
    const release = hooks.hold();
    // Registered before the attempt starts: its first steps already look up its hooks here.
    const flight = { lease, hooks, done: Promise.resolve() };
    this.#inFlight.set(lease.token, flight);
    flight.done = this.#attempt(lease)
      .catch((error: unknown) => {
        const log = this.#deps.log.child({ qid: lease.message.id });
        log.error({ err: error }, `delivery attempt failed: ${(error as Error).message}`);
        return this.#untilRecorded(lease, 'give the message back to', log, () => this.#deps.queue.abandon(lease)).catch(() => undefined);
      })
      .finally(() => {
        this.#inFlight.delete(lease.token);
        this.#abandoned.delete(lease.token);
        release();
        this.#poke(); // a worker is free again
      });
  }

  /** One delivery attempt on one leased message, from routing to settle. */
  async #attempt(lease: Lease): Promise<void> {
    const { queue, clock } = this.#deps;
    const message = lease.message;
    // The fields an operator greps delivery lines by: queue id, message-id, sender.
    const log = this.#deps.log.child({ qid: message.id, msgid: message.messageId, from: message.envelope.from });
    const started = Date.now();
    const open = message.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred');
    if (open.length === 0) {
      await this.#untilRecorded(lease, 'record the attempt in', log, () => queue.settle(lease, { outcomes: [] }));
      return;
    }
    const attempt = message.attempts + 1;
    const groups = await this.#route(lease, open, log);
    const outcomes = await Promise.all([...groups.values()].map((group) => this.#deliverGroup(lease, group, attempt, log)));
    if (this.#abandoned.has(lease.token)) return;
    const settled = outcomes.flatMap((outcome) => (Array.isArray(outcome) ? outcome : []));
    const postponed = outcomes.flatMap((outcome) => (Array.isArray(outcome) ? [] : [outcome.postponedUntil]));
    const dueAgainAt = postponed.length > 0 ? Math.min(...postponed) : undefined;
    if (settled.length === 0) {
      // Nothing went out: the message goes back as it was, no attempt counted.
      await this.#untilRecorded(lease, 'give the message back to', log, () => queue.abandon(lease, dueAgainAt));
      return;
    }
    await this.#finish(lease, settled, clock.now(), log.child({ ms: Date.now() - started }), dueAgainAt);
  }

  async #route(lease: Lease, open: readonly QueuedRecipient[], log: Logger): Promise<Map<string, { route: Route | undefined; recipients: QueuedRecipient[] }>> {
    const groups = new Map<string, { route: Route | undefined; recipients: QueuedRecipient[] }>();
    for (const recipient of open) {
      let route: Route | undefined;
      try {
        route = await this.#hooks(lease).route(lease.message, recipient);
      } catch (error) {
        log.error({ rcpt: recipient.address, err: error, plugin: (error as OutboundHookError).plugin, code: 'PETREL_HOOK_FAILED' }, (error as Error).message);
      }
      // A recipient that could not be routed is a group of its own that fails over to "deferred".
      const key = route ? `${route.target ?? ''}\u0000${route.destination}` : `\u0001${recipient.address}`;
      const group = groups.get(key) ?? { route, recipients: [] };
      group.recipients.push(recipient);
      groups.set(key, group);
    }
    return groups;
  }

  async #deliverGroup(
    lease: Lease,
    group: { route: Route | undefined; recipients: QueuedRecipient[] },
    attempt: number,
    parentLog: Logger,
  ): Promise<Settled[] | Postponed> {
    const { route, recipients } = group;
    if (!route) return deferAll(recipients, route, REPLIES.routeFailed);
    const target = this.#hooks(lease).deliveryTarget(route);
    const log = parentLog.child({ target: target?.plugin ?? route.target, destination: route.destination });
    if (!target) {
      log.error({ rcpt: recipients.map((r) => r.address) }, `no delivery plugin named "${route.target}" is loaded; recipients deferred`);
      return deferAll(recipients, route, REPLIES.noTarget);
    }
    const { clock } = this.#deps;
    // Routing took the lease's last second (a hook that hung): give the message back untouched.
    if (clock.now() >= lease.deadline - LEASE_MARGIN_MS) return { postponedUntil: clock.now() };
    const admission = await this.#shaper.admit({
      target: target.plugin,
      route,
      mustStartBy: Math.max(clock.now(), lease.deadline - target.timeoutMs - LEASE_MARGIN_MS),
    });
    if (admission.kind === 'later') {
      // A message must not wait past its expiry for a busy destination: it expires with its last error.
      if (!this.#running || !this.#schedule.isExpired(lease.message.receivedAt, clock.now())) {
        log.debug({ rcpt: recipients.map((r) => r.address), dueAt: admission.at }, `destination busy: postponed for ${admission.at - clock.now()} ms`);
        return { postponedUntil: admission.at };
      }
      return recipients.map((recipient) => deferAll([recipient], route, lastReplyOf(recipient))[0]);
    }
    return this.#send(lease, route, target, recipients, attempt, admission.ticket, log);
  }

  /**
   * Transform and deliver one admitted group; the ticket learns how the
   * destination answered. The deliver call runs inside an AttemptObserver, so
   * the connections it opens are traced and the attempt's history says which
   * servers it talked to.
   */
  async #send(
    lease: Lease,
    route: Route,
    target: RegisteredHandler<'deliver'>,
    recipients: readonly QueuedRecipient[],
    attempt: number,
    ticket: DeliveryTicket,
    log: Logger,
  ): Promise<Settled[]> {
    const abort = new AbortController();
    const onShutdown = () => abort.abort(new Error('shutdown'));
    this.#shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    const observer = new AttemptObserver(this.#deps.trace, lease.message.id, route.destination);
    let results: readonly RecipientResult[] | undefined;
    let settled: Settled[];
    try {
      const delivery = await this.#delivery(lease, route, recipients, attempt, abort.signal, ticket, log, observer);
      results = await runInAttempt(observer, () => this.#hooks(lease).deliver(target, delivery, () => abort.abort(new Error('timeout'))));
      settled = this.#match(recipients, results, route, log);
    } catch (error) {
      if (this.#shutdown.signal.aborted) {
        settled = deferAll(recipients, route, REPLIES.aborted);
      } else {
        log.error({ err: error, plugin: (error as OutboundHookError).plugin ?? target.plugin, code: 'PETREL_HOOK_FAILED' }, (error as Error).message);
        settled = deferAll(recipients, route, REPLIES.targetFailed);
      }
    } finally {
      this.#shutdown.signal.removeEventListener('abort', onShutdown);
      ticket.finish(results);
    }
    this.#deps.history?.append({
      id: lease.message.id,
      t: 'attempt',
      at: observer.startedAt,
      attempt,
      target: target.plugin,
      destination: route.destination,
      rcpts: recipients.map((r) => r.address),
      ms: Date.now() - observer.startedAt,
      connections: observer.connections,
      notes: observer.notes,
      results: settled.map(factsOf),
    });
    return settled;
  }

  /** The Delivery a target gets; transforms run first, on a copy of the stored headers (OutgoingCopies). */
  async #delivery(
    lease: Lease,
    route: Route,
    recipients: readonly QueuedRecipient[],
    attempt: number,
    signal: AbortSignal,
    ticket: DeliveryTicket,
    log: Logger,
    observer: AttemptObserver,
  ): Promise<Delivery> {
    const { queue } = this.#deps;
    const hooks = this.#hooks(lease);
    const id = lease.message.id;
    const copies = new OutgoingCopies(() => queue.read(id), hooks.hasTransforms ? (content) => hooks.transform(delivery, content) : undefined);
    const delivery: Delivery = {
      message: lease.message,
      route,
      recipients,
      attempt,
      signal,
      log,
      limits: ticket.limits,
      open: (options) => copies.open(options),
    };
    attachObserver(delivery, observer);
    await copies.prepare();
    return delivery;
  }

  /** One result per recipient of the group; a recipient the target forgot is deferred, never lost. */
  #match(recipients: readonly QueuedRecipient[], results: readonly RecipientResult[], route: Route, log: Logger): Settled[] {
    const byAddress = new Map(results.map((result) => [result.address.toLowerCase(), result]));
    return recipients.map((recipient) => {
      const result = byAddress.get(recipient.address.toLowerCase());
      if (result && (result.status === 'delivered' || result.status === 'deferred' || result.status === 'bounced')) {
        return { recipient, route, result: { ...result, address: recipient.address } as RecipientResult };
      }
      log.warn({ rcpt: recipient.address }, 'delivery target gave no result for a recipient; deferred');
      return { recipient, route, result: { address: recipient.address, status: 'deferred', reply: REPLIES.noResult } };
    });
  }

  /** Expiry, hooks, DSNs, then the queue record: in that order, so a crash repeats work rather than losing it. */
  #record(settled: Settled, receivedAt: number, now: number): void {
    const metrics = this.#deps.metrics;
    if (!metrics) return;
    const destination = metrics.destinations.label(settled.route?.destination ?? domainOf(settled.recipient.address));
    metrics.deliveryAttempts.inc({ destination, outcome: settled.result.status });
    if (settled.result.status === 'delivered') metrics.deliveryLatency.observe({ destination }, (now - receivedAt) / 1000);
  }

  async #finish(lease: Lease, settled: Settled[], now: number, log: Logger, postponedUntil: number | undefined): Promise<void> {
    const { queue, bouncer, clock } = this.#deps;
    const hooks = this.#hooks(lease);
    const message = lease.message;
    const expired = this.#schedule.isExpired(message.receivedAt, now);
    const outcomes = settled.map((s) => (expired && s.result.status === 'deferred' ? expire(s, this.#deps.config.expireAfter) : s));
    for (const s of outcomes) {
      this.#record(s, message.receivedAt, now);
      log.info(
        { rcpt: s.recipient.address, status: s.result.status, reply: s.result.reply ? formatReply(s.result.reply) : undefined, target: s.route?.target, destination: s.route?.destination, attempt: message.attempts + 1 },
        `delivery ${s.result.status}`,
      );
    }
    const of = (status: RecipientResult['status']) => outcomes.filter((s) => s.result.status === status);
    const reports = (list: Settled[]) => list.map((s) => ({ address: s.recipient.address, reply: s.result.reply ?? { code: 250, text: 'OK' }, route: s.route }));
    const [delivered, deferred, bounced] = [of('delivered'), of('deferred'), of('bounced')];

    let nextAttemptAt: number | undefined;
    if (deferred.length > 0) {
      const failures = Math.max(...deferred.map((s) => s.recipient.attempts + 1));
      nextAttemptAt = this.#schedule.nextAttemptAt(message.receivedAt, failures, now);
      nextAttemptAt = (await hooks.deferred({ message, recipients: reports(deferred), nextAttemptAt })) ?? nextAttemptAt;
    }
    // Recipients whose destination had no room are due when it expects to (the deferred ones come along).
    if (postponedUntil !== undefined) nextAttemptAt = Math.min(nextAttemptAt ?? postponedUntil, postponedUntil);
    const dsn: DsnRecipient[] = [];
    if (bounced.length > 0) {
      const suppress = await hooks.bounced({ message, recipients: reports(bounced), reason: expired ? 'expired' : 'rejected' });
      if (!suppress) dsn.push(...bounced.map((s) => dsnRecipient(s, 'failed', now)));
    }
    dsn.push(...deferred.filter((s) => this.#delayWarningDue(message.receivedAt, s.recipient, now)).map((s) => dsnRecipient(s, 'delayed', now)));
    for (const s of delivered) {
      const action = successAction(s.result);
      if (action) dsn.push(dsnRecipient(s, action, now));
    }

    let final = outcomes;
    let dsnId: string | undefined;
    try {
      dsnId = await bouncer.report(message, dsn);
    } catch (error) {
      // Without its DSN a failure would be silent: keep those recipients and try again later.
      log.error({ err: error }, `could not queue the delivery status notification: ${(error as Error).message}; bounced recipients stay queued`);
      final = outcomes.map((s) => (s.result.status === 'bounced' ? { ...s, result: { ...s.result, status: 'deferred' } as RecipientResult } : s));
      nextAttemptAt ??= this.#schedule.nextAttemptAt(message.receivedAt, message.attempts + 1, now);
    }
    const recorded = await this.#untilRecorded(lease, 'record the attempt in', log, () => queue.settle(lease, { outcomes: final.map(toOutcome), nextAttemptAt }));
    if (!recorded) {
      log.warn('lease was lost before the results were recorded (the lease ran out); the message will be tried again');
      return;
    }
    this.#deps.history?.append({
      id: message.id,
      t: 'settled',
      at: clock.now(),
      attempt: message.attempts + 1,
      results: final.map(factsOf),
      ...(nextAttemptAt !== undefined ? { nextAttemptAt } : {}),
      ...(expired ? { expired } : {}),
      ...(dsnId ? { dsn: dsnId } : {}),
      done: !applyOutcomes(message.recipients, final.map(toOutcome), now).open,
    });
    if (delivered.length > 0) await hooks.delivered({ message, recipients: reports(delivered) });
  }

  /**
   * Ends a lease through the queue (settle, abandon), trying again while the
   * queue cannot write (a full disk, Redis away): a queue that rejects leaves
   * the lease as it was, so the result is recorded as soon as the queue takes
   * it, not forgotten, and the message is not left leased by nobody until its
   * deadline. Gives up only when shutdown gives the lease back.
   */
  async #untilRecorded<T>(lease: Lease, what: string, log: Logger, operation: () => Promise<T>): Promise<T> {
    try {
      for (let wait = 250; ; wait = Math.min(wait * 2, 10_000)) {
        try {
          return await operation();
        } catch (error) {
          if (this.#abandoned.has(lease.token)) throw error;
          this.#unrecorded.add(lease.token);
          log.error(
            { err: error, code: 'PETREL_QUEUE_UNAVAILABLE' },
            `cannot ${what} the queue: ${(error as Error).message}; the message stays leased, trying again in ${wait} ms`,
          );
          await delay(wait, undefined, { signal: this.#shutdown.signal }).catch(() => undefined);
        }
      }
    } finally {
      this.#unrecorded.delete(lease.token);
    }
  }

  /** A deferred recipient crosses the delay-warning time between its previous attempt and now. */
  #delayWarningDue(receivedAt: number, recipient: QueuedRecipient, now: number): boolean {
    const after = this.#deps.config.delayWarningAfter;
    if (after <= 0) return false;
    const warnAt = receivedAt + after;
    const previous = recipient.updatedAt ?? receivedAt;
    return previous < warnAt && warnAt <= now;
  }
}

function deferAll(recipients: readonly QueuedRecipient[], route: Route | undefined, reply: DeliveryReply): Settled[] {
  return recipients.map((recipient) => ({ recipient, route, result: { address: recipient.address, status: 'deferred', reply } }));
}

/** The last reply a recipient had (a server's 421, say), else that its destination never had room. */
function lastReplyOf(recipient: QueuedRecipient): DeliveryReply {
  const last = recipient.lastReply ? parseReply(recipient.lastReply) : undefined;
  // The stored text no longer says who wrote it: not claimed as a server's (see DeliveryReply.fromServer).
  return last && last.code >= 400 && last.code < 500 ? { ...last, fromServer: false } : REPLIES.destinationBusy;
}

function expire(settled: Settled, expireAfter: number): Settled {
  const last = settled.result.reply;
  const reply: DeliveryReply = {
    code: last?.code && last.code >= 400 ? last.code : 451,
    enhanced: '4.4.7',
    text: `message expired after ${describeDuration(expireAfter)} in the queue${last ? `; last error: ${formatReply(last)}` : ''}`,
    ...(last?.remoteMta ? { remoteMta: last.remoteMta } : {}),
  };
  return { ...settled, result: { address: settled.result.address, status: 'bounced', reply } };
}

/** What a success report says (RFC 3461 5.2), or nothing when the next hop got NOTIFY and reports from now on. */
function successAction(result: RecipientResult): 'delivered' | 'relayed' | undefined {
  if (result.status !== 'delivered' || result.handoff === 'passed-on') return undefined;
  return result.handoff === 'relayed' ? 'relayed' : 'delivered';
}

function dsnRecipient(settled: Settled, action: DsnRecipient['action'], now: number): DsnRecipient {
  return {
    address: settled.recipient.address,
    orcpt: settled.recipient.orcpt,
    action,
    reply: settled.result.reply ?? { code: 250, text: 'delivered' },
    lastAttemptAt: now,
  };
}

/** A recipient's result as the history keeps it. */
function factsOf(settled: Settled): RecipientFacts {
  const { result } = settled;
  return { address: result.address, status: result.status, ...(result.reply ? { reply: formatReply(result.reply) } : {}) };
}

function toOutcome(settled: Settled): RecipientOutcome {
  const { result } = settled;
  if (result.status === 'delivered') {
    return { address: result.address, status: 'delivered', ...(result.reply ? { reply: formatReply(result.reply) } : {}) };
  }
  return { address: result.address, status: result.status, reply: formatReply(result.reply) };
}
