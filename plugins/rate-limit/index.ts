import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { cidr, type Clock, duration, type HookRegistrar, inject, injectable, type LimitStore, type Logger, MemoryStore, type Metrics, NetworkList, type PetrelConfig, type PluginMeta, type RedisClient, RedisStore, TOKENS, z } from 'petrel';
import { limitText } from './answers.js';
import { LimitChecks } from './limit-checks.js';
import { limitsCommand, type LimitReport, type RateLimitAdmin } from './limits-command.js';
import { RateLimiter } from './rate-limiter.js';
import { keyValue } from './rule-keys.js';
import { compileRule, rulesSchema, type Rule } from './rules.js';
import { StoreHealth } from './store-health.js';
import { rateLimitCounters } from './rate-limit-metrics.js';

export const options = z.strictObject({
  store: z
    .enum(['memory', 'redis'])
    .default('memory')
    .describe('memory: counters in this process (one node); redis: shared by every node using the same Redis'),
  keyPrefix: z.string().default('ratelimit:').describe('prefix of the counters in Redis, after redis.keyPrefix'),
  failMode: z
    .enum(['open', 'closed'])
    .default('open')
    .describe('what rules without their own failMode do when Redis cannot answer: let mail through (open) or answer 451 (closed)'),
  timeout: duration().prefault('1s').describe('a Redis call slower than this counts as Redis being unavailable'),
  slotLease: duration()
    .pipe(z.number().min(5_000, 'expected at least 5s: holders refresh their slots every third of it'))
    .prefault('60s')
    .describe('redis: how long a concurrency slot stays counted after the node holding it died'),
  exempt: z.array(cidr()).default([]).describe('clients in these networks are never limited (monitoring, your own relays)'),
  rules: rulesSchema.describe('the limits, checked in this order'),
});

type Options = z.output<typeof options>;

/** Runs first in each inbound hook, so a client over its limit is refused before costlier checks (DNSBL, auth backends). */
const EARLY = { priority: 1000 };
/** Counts a message after every other message check passed, so refused mail uses no quota. */
const LATE = { priority: -1000 };

/**
 * Rate limits and concurrency limits on the inbound SMTP path, per client,
 * sender, user, recipient or listener, counted in memory (one node) or in
 * Redis (many nodes). docs/rate-limiting.md explains the model.
 */
@injectable()
export default class RateLimit implements RateLimitAdmin {
  static readonly meta: PluginMeta = {
    name: 'rate-limit',
    version: '1.0.0',
    description: 'rate and concurrency limits per client, sender, user, recipient or listener; memory or Redis',
  };
  static readonly options = options;
  static readonly commands = [limitsCommand];

  readonly #rules: readonly Rule[];
  readonly #store: LimitStore;
  readonly #checks: LimitChecks;
  readonly #limiter: RateLimiter;

  constructor(
    @inject(TOKENS.PluginOptions) opts: Options,
    @inject(TOKENS.Config) private readonly config: PetrelConfig,
    @inject(TOKENS.Clock) clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Redis, { isOptional: true }) redis: RedisClient | undefined,
    @inject(TOKENS.Metrics) metrics: Metrics,
  ) {
    this.#rules = opts.rules.map((rule) => compileRule(rule, opts.failMode));
    this.#checkListeners();
    this.#store = this.#makeStore(opts, clock, redis);
    const counters = rateLimitCounters(metrics);
    this.#checks = new LimitChecks(this.#store, new StoreHealth(this.#rules, log, clock, counters.storeFailures), opts.keyPrefix, log, counters.hits);
    const ruleExempt = new Map(this.#rules.map((rule) => [rule, new NetworkList(rule.exempt)]));
    const nodeId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#limiter = new RateLimiter(this.#rules, this.#checks, new NetworkList(opts.exempt), ruleExempt, nodeId, log);
    for (const rule of this.#rules) {
      if (rule.count === 'bytes' && rule.limit < config.limits.messageSize) {
        log.warn({ rule: rule.name }, `rule ${rule.name}: ${limitText(rule)} is less than limits.messageSize; one large message uses more than the whole budget`);
      }
    }
  }

  register(hooks: HookRegistrar): void {
    const limiter = this.#limiter;
    hooks.on('connect', (session) => limiter.onConnect(session), EARLY);
    hooks.on('helo', (session, helo) => limiter.onHelo(session, helo), EARLY);
    hooks.on('auth', (session, credentials) => limiter.onAuth(session, credentials), EARLY);
    hooks.on('mail', (session, transaction, from) => limiter.onMail(session, transaction, from), EARLY);
    hooks.on('rcpt', (session, transaction, recipient) => limiter.onRcpt(session, transaction, recipient), EARLY);
    hooks.on('message', (session, transaction, message) => limiter.onMessage(session, transaction, message), LATE);
    hooks.on('disconnect', (session) => limiter.onDisconnect(session), EARLY);
  }

  start(): void {
    this.#store.start();
    const rules = this.#rules.map((rule) => `${rule.name} (${limitText(rule)})`).join(', ');
    this.log.info({ store: this.#store.kind, rules: this.#rules.length }, `rate limits (${this.#store.kind}): ${rules}`);
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  async showLimits(value: string, ruleName?: string): Promise<LimitReport[]> {
    const reports: LimitReport[] = [];
    for (const { rule, key } of this.#counters(value, ruleName)) {
      const base = { rule: rule.name, count: rule.count, key: rule.key, value: key, limit: rule.limit, limitText: limitText(rule) };
      const storeKey = this.#checks.storeKey(rule, key);
      if (rule.rate) {
        const budget = await this.#store.take(storeKey, rule.rate, 1, { mode: 'fit', dryRun: true });
        reports.push({ ...base, used: budget.used, resetAfterMs: budget.resetAfterMs });
      } else {
        reports.push({ ...base, used: await this.#store.holders(storeKey) });
      }
    }
    return reports;
  }

  async resetLimits(value: string, ruleName?: string): Promise<LimitReport[]> {
    const shown = await this.showLimits(value, ruleName);
    const reset: LimitReport[] = [];
    for (const report of shown) {
      const rule = this.#rules.find((r) => r.name === report.rule) as Rule;
      if (await this.#store.reset(this.#checks.storeKey(rule, report.value))) reset.push(report);
    }
    return reset;
  }

  /** The rules `value` could be a key of, with the key as the server would count it. */
  #counters(value: string, ruleName: string | undefined): { rule: Rule; key: string }[] {
    if (this.#store.kind === 'memory') {
      throw new Error('store: memory keeps its counters inside the running server, where this command cannot see them; use store: redis to inspect and reset limits');
    }
    if (ruleName !== undefined && !this.#rules.some((rule) => rule.name === ruleName)) {
      throw new Error(`no rule named "${ruleName}" (rules: ${this.#rules.map((rule) => rule.name).join(', ')})`);
    }
    const listenerNames = new Set(this.config.listeners.map((listener) => listener.name));
    const counters: { rule: Rule; key: string }[] = [];
    for (const rule of this.#rules) {
      if (ruleName !== undefined && rule.name !== ruleName) continue;
      if (rule.key === 'listener' && !listenerNames.has(value)) continue;
      // Any text can be a HELO name, but an address or an IP is not what an operator means by one.
      if (rule.key === 'helo' && (value.includes('@') || keyValue('ip', value, rule) !== undefined)) continue;
      const key = keyValue(rule.key, value, rule);
      if (key !== undefined) counters.push({ rule, key });
    }
    return counters;
  }

  #makeStore(opts: Options, clock: Clock, redis: RedisClient | undefined): LimitStore {
    if (opts.store === 'memory') return new MemoryStore(clock);
    if (!redis) {
      throw new Error('options.store is redis, but the config has no redis: section; add one (redis: { url: redis://127.0.0.1:6379 }) or use store: memory');
    }
    return new RedisStore(redis, {
      timeoutMs: opts.timeout,
      slotLeaseMs: opts.slotLease,
      onRefreshError: (error) => this.log.debug({ err: error }, 'could not refresh concurrency slot leases'),
    });
  }

  #checkListeners(): void {
    const names = this.config.listeners.map((listener) => listener.name);
    for (const rule of this.#rules) {
      const unknown = rule.listeners?.find((name) => !names.includes(name));
      if (unknown !== undefined) {
        throw new Error(`rule ${rule.name}: listeners: there is no listener named "${unknown}" (listeners: ${names.join(', ')})`);
      }
    }
  }
}
