import { accept, type Address, asciiDomain, cidr, type HookRegistrar, type HookResult, type IncomingMessage, inject, injectable, type Logger, NetworkList, next, type PetrelConfig, type PluginMeta, reject, type Session, TOKENS, type Transaction, z } from 'petrel';
import { addressTrick, domainOf } from './address-tricks.js';
import { headerSenders } from './header-senders.js';
import { SenderOwnership } from './sender-ownership.js';

export const options = z.strictObject({
  relayNetworks: z
    .array(cidr())
    .default([])
    .describe('clients in these networks may relay without AUTH (your own servers)'),
  authenticatedRelay: z.boolean().default(true).describe('authenticated users may relay'),
  senderCheck: z
    .enum(['authenticated', 'submission', 'off'])
    .default('authenticated')
    .describe(
      'whose MAIL FROM must belong to the logged-in user: every authenticated session, only those on submission listeners, or nobody; the null sender <> then reaches local recipients only',
    ),
  headerFromCheck: z
    .enum(['authenticated', 'submission', 'off'])
    .default('submission')
    .describe('whose header From: (and Sender:) addresses must belong to the logged-in user: every authenticated session, only those on submission listeners, or nobody'),
  senderLogins: z
    .record(z.string().min(1), z.array(z.string().min(1)))
    .default({})
    .describe('extra senders: address or @domain → the logins that may use it'),
  subaddressSeparator: z.string().max(1).default('+').describe('alice+tag@ counts as alice@ when checking senders; empty turns it off'),
});

type Options = z.output<typeof options>;

/**
 * The gate at RCPT: mail for a local domain is accepted; mail for anywhere
 * else only from an authenticated user or a relay network; everything else
 * gets `554 5.7.1 Relay access denied`. Clients that may not relay also get
 * routing tricks refused (see address-tricks.ts).
 *
 * It runs last among rcpt handlers (priority -100) so that validators such
 * as `recipients` and `greylist` can refuse first.
 *
 * At MAIL it keeps authenticated users to their own addresses (553 5.7.1),
 * so one account cannot send as another (see sender-ownership.ts); at RCPT
 * it gives their null sender <> local recipients only (a user has no reason
 * to send a bounce to the world); and once the message is in, the addresses
 * in its From: and Sender: fields must be theirs too (550 5.7.1), since the
 * header From: is what the recipient sees and what DMARC checks.
 */
@injectable()
export default class RelayAccess {
  static readonly meta: PluginMeta = {
    name: 'relay-access',
    version: '1.0.0',
    description: 'no open relay: local domains, relay networks and authenticated users only; users send as themselves',
  };
  static readonly options = options;

  readonly #localDomains: Set<string>;
  readonly #relayNetworks: NetworkList;
  readonly #senders: SenderOwnership;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#localDomains = new Set(config.server.localDomains.map(asciiDomain));
    this.#relayNetworks = new NetworkList(opts.relayNetworks);
    this.#senders = new SenderOwnership(this.#localDomains, opts.senderLogins, opts.subaddressSeparator);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('mail', (session, _transaction, from) => this.checkSender(session, from));
    hooks.on('rcpt', (session, transaction, recipient) => this.checkRecipient(session, transaction, recipient), { priority: -100 });
    hooks.on('message', (session, _transaction, message) => this.checkHeaderSenders(session, message));
  }

  checkSender(session: Session, from: Address): HookResult {
    const login = this.#checkedLogin(session, this.opts.senderCheck);
    if (login === undefined || this.#senders.owns(login, from.address)) return next();
    this.log.info({ sid: session.id, user: login, from: from.address }, 'sender refused: not owned by the authenticated user');
    return reject(553, '5.7.1', `<${from.address}>: Sender address rejected: not owned by user ${login}`);
  }

  checkHeaderSenders(session: Session, message: IncomingMessage): HookResult {
    const login = this.#checkedLogin(session, this.opts.headerFromCheck);
    if (login === undefined) return next();
    const senders = headerSenders(message.headers);
    if (!senders.some((sender) => sender.field === 'From')) {
      this.log.info({ sid: session.id, user: login }, 'message refused: no From: address');
      return reject(550, '5.7.1', `Message has no From: address; it must name an address of user ${login}`);
    }
    const foreign = senders.find((sender) => !this.#senders.owns(login, sender.address));
    if (foreign === undefined) return next();
    this.log.info({ sid: session.id, user: login, field: foreign.field, address: foreign.address }, 'message refused: header sender not owned by the authenticated user');
    return reject(550, '5.7.1', `${foreign.field}: address <${foreign.address}> is not owned by user ${login}`);
  }

  checkRecipient(session: Session, transaction: Transaction, recipient: Address): HookResult {
    // RFC 5321 4.5.1: <postmaster> without a domain reaches this server's postmaster.
    if (recipient.address.toLowerCase() === 'postmaster') return accept();
    const mayRelay = this.#mayRelay(session);
    if (!mayRelay) {
      const trick = addressTrick(recipient.address);
      if (trick) {
        this.log.info({ sid: session.id, rcpt: recipient.address, trick }, 'routing trick refused');
        return relayDenied(recipient);
      }
    }
    const domain = domainOf(recipient.address);
    if (domain !== undefined && this.#localDomains.has(asciiDomain(domain))) return accept();
    if (transaction.from.address === '' && this.#checkedLogin(session, this.opts.senderCheck) !== undefined) {
      this.log.info({ sid: session.id, user: session.user, rcpt: recipient.address }, 'null sender refused for a remote recipient');
      return reject(550, '5.7.1', `<${recipient.address}>: the null sender <> is accepted for local recipients only`);
    }
    if (mayRelay) return accept();
    return relayDenied(recipient);
  }

  /** The login whose addresses a check in `mode` holds this session to, or undefined when it does not apply. */
  #checkedLogin(session: Session, mode: Options['senderCheck']): string | undefined {
    if (session.user === undefined || mode === 'off') return undefined;
    if (mode === 'submission' && !session.listener.submission) return undefined;
    return session.user;
  }

  #mayRelay(session: Session): boolean {
    if (session.user !== undefined && this.opts.authenticatedRelay) return true;
    return this.#relayNetworks.contains(session.remote.address);
  }
}

function relayDenied(recipient: Address): HookResult {
  return reject(554, '5.7.1', `<${recipient.address}>: Relay access denied`);
}
