import type { ShapingConfig, ShapingRuleConfig } from '../config/shaping-schema.js';
import type { Rate } from '../rate/gcra.js';
import { asciiDomain } from '../util/mail-address.js';
import type { Route } from './outbound.js';

/** One message rate of a destination, with the name its store key and logs use. */
export interface DestinationRate {
  readonly name: 'minute' | 'hour';
  /** As the GCRA store takes it: with `burst`, a smaller budget over a shorter window, same pace. */
  readonly rate: Rate;
  /** Ms between two messages at the sustained pace. */
  readonly intervalMs: number;
}

export interface BackoffSettings {
  readonly pauseMs: number;
  readonly maxPauseMs: number;
  readonly recoverAfter: number;
}

/** What applies to one destination: the default profile with the first matching rule laid over it. */
export interface ShapingLimits {
  /** The rule's name, or `default`. */
  readonly rule: string;
  readonly maxConnections: number;
  readonly messagesPerConnection?: number;
  readonly rates: readonly DestinationRate[];
  readonly backoff: BackoffSettings;
}

interface CompiledRule {
  readonly patterns: readonly Pattern[];
  readonly limits: ShapingLimits;
}

/** `example.com` matches that name only; `*.example.com` every name under it (not example.com itself). */
interface Pattern {
  readonly name: string;
  readonly subdomains: boolean;
}

const WINDOWS = { minute: 60_000, hour: 3_600_000 } as const;

/**
 * Finds the shaping limits of a route from `delivery.shaping`: the first rule
 * (config order) with a pattern matching the route's host (when the router
 * named one) or its destination, else the default profile. A rule's unset
 * keys come from the default; the default's maxConnections falls back to
 * `delivery.concurrency.perDestination`.
 */
export class ShapingRules {
  readonly #rules: readonly CompiledRule[];
  readonly #default: ShapingLimits;

  constructor(config: ShapingConfig, perDestination: number) {
    const base: Profile = { ...config.default, maxConnections: config.default.maxConnections ?? perDestination };
    this.#default = limitsOf('default', base);
    this.#rules = config.rules.map((rule) => compile(rule, base));
  }

  limitsFor(route: Route): ShapingLimits {
    const names = [route.host, route.destination].filter((name): name is string => name !== undefined).map(canonicalName);
    const rule = this.#rules.find(({ patterns }) => patterns.some((pattern) => names.some((name) => matches(pattern, name))));
    return rule?.limits ?? this.#default;
  }
}

/** The default profile as configured, and every rule once laid over it. */
type Profile = Omit<ShapingConfig['default'], 'maxConnections'> & { readonly maxConnections: number };

function compile(rule: ShapingRuleConfig, base: Profile): CompiledRule {
  const sources = Array.isArray(rule.match) ? rule.match : [rule.match];
  const patterns = sources.map((source): Pattern => {
    const subdomains = source.startsWith('*.');
    return { name: canonicalName(subdomains ? source.slice(2) : source), subdomains };
  });
  const profile: Profile = {
    maxConnections: rule.maxConnections ?? base.maxConnections,
    messagesPerConnection: rule.messagesPerConnection ?? base.messagesPerConnection,
    messagesPerMinute: rule.messagesPerMinute ?? base.messagesPerMinute,
    messagesPerHour: rule.messagesPerHour ?? base.messagesPerHour,
    burst: rule.burst ?? base.burst,
    backoff: { ...base.backoff, ...definedOnly(rule.backoff ?? {}) },
  };
  return { patterns, limits: limitsOf(rule.name ?? sources[0], profile) };
}

function limitsOf(rule: string, profile: Profile): ShapingLimits {
  const rates = (['minute', 'hour'] as const).flatMap((name) => {
    const limit = name === 'minute' ? profile.messagesPerMinute : profile.messagesPerHour;
    return limit === undefined ? [] : [destinationRate(name, limit, profile.burst)];
  });
  const { pause, maxPause, recoverAfter } = profile.backoff;
  return {
    rule,
    maxConnections: profile.maxConnections,
    ...(profile.messagesPerConnection !== undefined ? { messagesPerConnection: profile.messagesPerConnection } : {}),
    rates,
    backoff: { pauseMs: pause, maxPauseMs: Math.max(pause, maxPause), recoverAfter },
  };
}

function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/**
 * `limit` messages per window at an even pace. GCRA lets a whole budget go at
 * once after a quiet spell; a burst of b keeps the pace and shrinks the
 * budget to b (a window of b intervals).
 */
function destinationRate(name: DestinationRate['name'], limit: number, burst: number | undefined): DestinationRate {
  const windowMs = WINDOWS[name];
  const intervalMs = windowMs / limit;
  const budget = Math.min(burst ?? limit, limit);
  return { name, intervalMs, rate: { limit: budget, windowMs: budget * intervalMs } };
}

/** Lower case, A-labels, no trailing dot, no `:port` (smarthost destinations are `host:port`). */
function canonicalName(name: string): string {
  const withoutPort = /^[^:]+:\d+$/.test(name) ? name.slice(0, name.lastIndexOf(':')) : name;
  return asciiDomain(withoutPort.replace(/\.$/, ''));
}

function matches(pattern: Pattern, name: string): boolean {
  return pattern.subdomains ? name.endsWith(`.${pattern.name}`) : name === pattern.name;
}
