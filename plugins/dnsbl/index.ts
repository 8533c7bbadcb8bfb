import { addPolicyMark, checkAction, cidr, type Clock, defer, type DnsResolver, duration, type HookRegistrar, type HookResult, type IncomingMessage, inject, injectable, isMark, type Logger, NetworkList, next, noteFinding, type PluginMeta, reject, type Session, severest, TOKENS, type Transaction, unmapIPv4, writePolicyMarks, z } from 'petrel';
import { CachedLookup } from './cached-lookup.js';
import { dnsblQueryName } from './query-name.js';

const zoneSchema = z.strictObject({
  zone: z.string().regex(/^[a-z0-9.-]+$/i, 'expected a DNS zone like zen.spamhaus.org'),
  returnCodes: z.array(cidr())
    .min(1)
    .default(['127.0.0.0/8'])
    .describe('answers that mean "listed" (addresses or networks); 127.255.255.x always means the list refused to answer'),
  action: checkAction().default('reject').describe('ignore, tag, quarantine, defer or reject'),
  message: z.string().optional().describe('reply text; {ip}, {zone} and {code} are replaced'),
  ipv6: z.boolean().default(true).describe('also ask about IPv6 clients (only lists that carry IPv6)'),
});

export const options = z.strictObject({
  zones: z.array(zoneSchema).min(1).describe('blocklists, asked in parallel when a client connects'),
  skipNetworks: z.array(cidr())
    .default(['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', 'fc00::/7', 'fe80::/10'])
    .describe('clients never looked up (private and loopback addresses are listed nowhere)'),
  cacheTtl: duration().prefault('5m').describe('how long an answer (listed or not) is reused'),
});

type Options = z.output<typeof options>;
type Zone = Options['zones'][number] & { readonly codes: NetworkList };

interface Listing {
  readonly zone: Zone;
  readonly code: string;
}

const LOOKUP = 'dnsbl:lookup';
/** Blocklists answer 127.255.255.x for "query refused" (e.g. through a public resolver), never for "listed". */
const ERROR_CODES = new NetworkList(['127.255.255.0/24']);

/**
 * DNS blocklists (RFC 5782) by client address, IPv4 and IPv6. The lookups
 * start when the client connects, so they run while it talks; the verdict
 * is given at MAIL FROM, after AUTH, so an authenticated user on a listed
 * dynamic address can still send. Each zone says which answers count and
 * what follows: reject (554 5.7.1), defer (451 4.7.1), tag or quarantine.
 * A lookup that fails lets the client through (a dead list must not stop mail).
 */
@injectable()
export default class Dnsbl {
  static readonly meta: PluginMeta = {
    name: 'dnsbl',
    version: '1.0.0',
    description: 'DNS blocklists by client IP (IPv4 and IPv6), per-zone return codes and actions, cached',
  };
  static readonly options = options;

  readonly #zones: Zone[];
  readonly #skip: NetworkList;
  readonly #lookup: CachedLookup;

  constructor(
    @inject(TOKENS.PluginOptions) opts: Options,
    @inject(TOKENS.Dns) dns: DnsResolver,
    @inject(TOKENS.Clock) clock: Clock,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#zones = opts.zones.map((zone) => ({ ...zone, zone: zone.zone.toLowerCase().replace(/\.$/, ''), codes: new NetworkList(zone.returnCodes) }));
    this.#skip = new NetworkList(opts.skipNetworks);
    this.#lookup = new CachedLookup(dns, clock, opts.cacheTtl);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('connect', (session) => this.startLookups(session));
    hooks.on('mail', (session, transaction) => this.judge(session, transaction));
    hooks.on('message', (_session, transaction, message) => this.mark(transaction, message));
  }

  startLookups(session: Session): HookResult {
    if (session.listener.submission || this.#skip.contains(session.remote.address)) return next();
    const lookups = this.#listings(session);
    // Awaited at MAIL; a client that quits before must not leave an unhandled rejection behind.
    lookups.catch(() => undefined);
    session.notes.set(LOOKUP, lookups);
    return next();
  }

  async judge(session: Session, transaction: Transaction): Promise<HookResult> {
    const pending = session.notes.get(LOOKUP) as Promise<Listing[]> | undefined;
    if (pending === undefined || session.user !== undefined) return next();
    const listings = await pending;
    if (listings.length === 0) return next();
    const action = severest(listings.map((listing) => listing.zone.action));
    const ip = unmapIPv4(session.remote.address);
    transaction.log.info({ ip, listed: listings.map((l) => `${l.zone.zone}=${l.code}`), action }, 'client listed in DNSBL');
    noteFinding(transaction, 'dnsbl', `${ip} listed: ${listings.map((l) => `${l.zone.zone} ${l.code}`).join(', ')} (action ${action})`);
    const decisive = listings.find((listing) => listing.zone.action === action) as Listing;
    const text = replyText(decisive, ip);
    if (action === 'reject') return reject(554, '5.7.1', text);
    if (action === 'defer') return defer(451, '4.7.1', text);
    if (isMark(action)) {
      for (const listing of listings.filter((l) => isMark(l.zone.action))) {
        addPolicyMark(transaction, listing.zone.action as 'tag' | 'quarantine', `dnsbl=listed (${listing.zone.zone} ${listing.code}) client-ip=${ip}`);
      }
    }
    return next();
  }

  mark(transaction: Transaction, message: IncomingMessage): HookResult {
    writePolicyMarks(transaction, message);
    return next();
  }

  async #listings(session: Session): Promise<Listing[]> {
    const listings = await Promise.all(this.#zones.map((zone) => this.#listing(session, zone)));
    return listings.filter((listing): listing is Listing => listing !== undefined);
  }

  async #listing(session: Session, zone: Zone): Promise<Listing | undefined> {
    const address = unmapIPv4(session.remote.address);
    if (!zone.ipv6 && address.includes(':')) return undefined;
    const name = dnsblQueryName(address, zone.zone);
    if (name === undefined) return undefined;
    let answers: string[];
    try {
      answers = await this.#lookup.addresses(name);
    } catch (error) {
      this.log.warn({ sid: session.id, zone: zone.zone, err: error }, `DNSBL ${zone.zone} lookup failed; client not judged by it`);
      return undefined;
    }
    if (answers.some((code) => ERROR_CODES.contains(code))) {
      this.log.warn({ zone: zone.zone, answers }, `DNSBL ${zone.zone} refused the query (${answers.join(', ')}); check your resolver or access key`);
      return undefined;
    }
    const code = answers.find((answer) => zone.codes.contains(answer));
    return code === undefined ? undefined : { zone, code };
  }
}

function replyText(listing: Listing, ip: string): string {
  const template = listing.zone.message ?? 'Service unavailable; client host [{ip}] blocked using {zone}';
  return template.replaceAll('{ip}', ip).replaceAll('{zone}', listing.zone.zone).replaceAll('{code}', listing.code);
}
