import { type Address, asciiDomain, cidr, type Clock, defer, duration, type ExpiringStore, type ExpiringStores, type HookRegistrar, type HookResult, inject, injectable, type Logger, NetworkList, next, noteFinding, type PetrelConfig, type PluginMeta, type Session, splitAddress, TOKENS, type Transaction, z } from 'petrel';
import { tripletKey } from './triplet.js';

export const options = z.strictObject({
  delay: duration().prefault('5m').describe('a retry is accepted once this much time has passed since the first attempt'),
  retryWindow: duration().prefault('2d').describe('a retry after delay + retryWindow counts as a new first attempt'),
  lifetime: duration().prefault('35d').describe('a triplet that passed is not greylisted again until unused this long'),
  ipv4Prefix: z.number().int().min(8).max(32).default(24).describe('IPv4 clients are one sender per network of this size'),
  ipv6Prefix: z.number().int().min(32).max(128).default(64).describe('IPv6 clients are one sender per network of this size'),
  store: z.enum(['auto', 'memory', 'redis']).default('auto').describe('auto: Redis when the config has redis:, memory otherwise'),
  whitelist: z
    .strictObject({
      networks: z.array(cidr()).default(['127.0.0.0/8', '::1/128']).describe('clients never greylisted'),
      relayNetworks: z.boolean().default(true).describe("also relay-access's relayNetworks"),
      senders: z.array(z.string().min(1)).default([]).describe('sender addresses or @domains never greylisted'),
      recipients: z.array(z.string().min(1)).default([]).describe('recipient addresses or @domains never greylisted (postmaster@, abuse@)'),
    })
    .prefault({}),
});

type Options = z.output<typeof options>;

/**
 * Triplet greylisting (RFC 6647): the first attempt from a (client network,
 * sender, recipient) is answered `451 4.7.1`; a real MTA retries, a
 * fire-and-forget spam engine usually does not. After `delay` the retry is
 * accepted and the triplet is remembered for `lifetime`.
 *
 * Authenticated users, whitelisted and relay networks are never greylisted,
 * and neither is mail to other domains (relay-access refuses that anyway).
 * Runs at RCPT with priority -50: after recipient validation (an unknown user
 * gets 550 at once, not a 451 first), before relay-access accepts.
 */
@injectable()
export default class Greylist {
  static readonly meta: PluginMeta = {
    name: 'greylist',
    version: '1.0.0',
    description: 'triplet greylisting (451 4.7.1 on the first attempt), in memory or Redis',
  };
  static readonly options = options;

  readonly #store: ExpiringStore;
  readonly #trustedNetworks: NetworkList;
  readonly #localDomains: Set<string>;
  readonly #senders: AddressList;
  readonly #recipients: AddressList;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.ExpiringStores) stores: ExpiringStores,
  ) {
    this.#store = stores.open(opts.store, 'greylist');
    const relayNetworks = opts.whitelist.relayNetworks ? relayNetworksOf(config) : [];
    this.#trustedNetworks = new NetworkList([...opts.whitelist.networks, ...relayNetworks]);
    this.#localDomains = new Set(config.server.localDomains.map(asciiDomain));
    this.#senders = new AddressList(opts.whitelist.senders);
    this.#recipients = new AddressList(opts.whitelist.recipients);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('rcpt', (session, transaction, recipient) => this.checkTriplet(session, transaction, recipient), { priority: -50 });
  }

  async checkTriplet(session: Session, transaction: Transaction, recipient: Address): Promise<HookResult> {
    if (!this.#applies(session, transaction.from.address, recipient.address)) return next();
    const { delay, retryWindow, lifetime, ipv4Prefix, ipv6Prefix } = this.opts;
    const key = tripletKey(session.remote.address, transaction.from.address, recipient.address, ipv4Prefix, ipv6Prefix);
    const now = this.clock.now();
    const seen = await this.#store.get(key);
    if (seen === 'pass') {
      await this.#store.set(key, 'pass', lifetime);
      return next();
    }
    const firstSeen = seen === undefined ? Number.NaN : Number(seen);
    const age = now - firstSeen;
    if (Number.isFinite(age) && age >= delay && age <= delay + retryWindow) {
      await this.#store.set(key, 'pass', lifetime);
      transaction.log.info({ triplet: key, waited: age }, 'greylisting passed');
      noteFinding(transaction, 'greylist', `passed: retried after ${Math.round(age / 1000)} s`);
      return next();
    }
    // New, or so old that it starts over; a retry that came too early keeps its first time.
    const fresh = !(Number.isFinite(age) && age >= 0 && age < delay);
    if (fresh) await this.#store.set(key, String(now), delay + retryWindow);
    const wait = Math.ceil((fresh ? delay : delay - age) / 1000);
    transaction.log.info({ triplet: key, retryIn: wait }, 'greylisted');
    return defer(451, '4.7.1', `<${recipient.address}>: Greylisted, please try again in ${wait} seconds`);
  }

  #applies(session: Session, sender: string, recipient: string): boolean {
    if (session.user !== undefined || this.#trustedNetworks.contains(session.remote.address)) return false;
    const target = splitAddress(recipient);
    if (target === undefined || !this.#localDomains.has(target.domain)) return false;
    return !this.#senders.has(sender) && !this.#recipients.has(recipient);
  }
}

/** Addresses and `@domain`s to match envelope addresses against. */
class AddressList {
  readonly #entries: Set<string>;

  constructor(entries: readonly string[]) {
    this.#entries = new Set(entries.map((entry) => (entry.startsWith('@') ? `@${asciiDomain(entry.slice(1))}` : entry.toLowerCase())));
  }

  has(address: string): boolean {
    const parts = splitAddress(address);
    return parts !== undefined && (this.#entries.has(`${parts.local}@${parts.domain}`) || this.#entries.has(`@${parts.domain}`));
  }
}

/** relay-access's relayNetworks from the config (validated there), so they need not be listed twice. */
function relayNetworksOf(config: PetrelConfig): string[] {
  const entry = config.plugins.find((plugin) => plugin.name === 'relay-access' && plugin.enabled);
  const value = entry?.options.relayNetworks;
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}
