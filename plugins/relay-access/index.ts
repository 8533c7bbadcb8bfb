import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import type { PetrelConfig } from '../../core/config/schema.js';
import { TOKENS } from '../../core/di/tokens.js';
import type { HookRegistrar } from '../../core/hooks/registry.js';
import { accept, reject, type HookResult } from '../../core/hooks/results.js';
import type { Logger } from '../../core/log/logger.js';
import type { PluginMeta } from '../../core/plugins/contract.js';
import type { Address, Session, Transaction } from '../../core/session.js';
import { NetworkList } from '../../core/util/networks.js';
import { cidr } from '../../core/config/units.js';
import { addressTrick, domainOf } from './address-tricks.js';

export const options = z.strictObject({
  relayNetworks: z
    .array(cidr())
    .default([])
    .describe('clients in these networks may relay without AUTH (your own servers)'),
  authenticatedRelay: z.boolean().default(true).describe('authenticated users may relay'),
});

type Options = z.output<typeof options>;

/**
 * The gate at RCPT: mail for a local domain is accepted; mail for anywhere
 * else only from an authenticated user or a relay network; everything else
 * gets `554 5.7.1 Relay access denied`. Clients that may not relay also get
 * routing tricks refused (see address-tricks.ts).
 *
 * It runs last among rcpt handlers (priority -100) so that validators such
 * as `recipients` can refuse unknown local users first.
 */
@injectable()
export default class RelayAccess {
  static readonly meta: PluginMeta = {
    name: 'relay-access',
    version: '1.0.0',
    description: 'no open relay: local domains, relay networks and authenticated users only',
  };
  static readonly options = options;

  readonly #localDomains: Set<string>;
  readonly #relayNetworks: NetworkList;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#localDomains = new Set(config.server.localDomains.map((d) => d.toLowerCase()));
    this.#relayNetworks = new NetworkList(opts.relayNetworks);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('rcpt', (session, transaction, recipient) => this.checkRecipient(session, transaction, recipient), { priority: -100 });
  }

  checkRecipient(session: Session, _transaction: Transaction, recipient: Address): HookResult {
    const mayRelay = this.#mayRelay(session);
    if (!mayRelay) {
      const trick = addressTrick(recipient.address);
      if (trick) {
        this.log.info({ sid: session.id, rcpt: recipient.address, trick }, 'routing trick refused');
        return reject(554, '5.7.1', `<${recipient.address}>: Relay access denied`);
      }
    }
    const domain = domainOf(recipient.address);
    if (domain !== undefined && this.#localDomains.has(domain)) return accept();
    if (mayRelay) return accept();
    return reject(554, '5.7.1', `<${recipient.address}>: Relay access denied`);
  }

  #mayRelay(session: Session): boolean {
    if (session.user !== undefined && this.opts.authenticatedRelay) return true;
    return this.#relayNetworks.contains(session.remote.address);
  }
}

