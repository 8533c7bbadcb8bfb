import { stat } from 'node:fs/promises';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import type { PetrelConfig } from '../../core/config/schema.js';
import { regularExpression } from '../../core/config/units.js';
import { TOKENS } from '../../core/di/tokens.js';
import type { HookRegistrar } from '../../core/hooks/registry.js';
import { next, reject, type HookResult } from '../../core/hooks/results.js';
import type { Logger } from '../../core/log/logger.js';
import type { Paths } from '../../core/paths.js';
import type { PluginMeta } from '../../core/plugins/contract.js';
import type { Address, Session } from '../../core/session.js';
import { asciiDomain, splitAddress } from '../../core/util/mail-address.js';
import { WatchedFile } from '../../core/util/watched-file.js';
import { parseRecipientFile, RecipientTable } from './recipient-table.js';

const pattern = regularExpression('iu');

export const options = z
  .strictObject({
    addresses: z.array(z.string().min(1)).default([]).describe('valid recipients: alice@example.org, alice (any local domain) or @example.org (whole domain)'),
    file: z.string().min(1).optional().describe('more entries like `addresses`, one a line, relative to the config file; reloaded when it changes'),
    patterns: z.array(pattern).default([]).describe('regular expressions matched against the whole address (case-insensitive)'),
    maildir: z
      .string()
      .min(1)
      .optional()
      .describe('a recipient is valid when this directory exists; {user} and {domain} are replaced, e.g. /var/mail/{domain}/{user}'),
    catchAll: z.boolean().default(false).describe('accept every recipient at the local domains (no validation at all)'),
    alwaysAccept: z.array(z.string().min(1)).default(['postmaster', 'abuse']).describe('local parts valid at every local domain (RFC 5321 requires postmaster)'),
    subaddressSeparator: z.string().max(1).default('+').describe('alice+tag@ is valid when alice@ is; empty turns it off'),
  })
  .refine((o) => o.catchAll || o.addresses.length > 0 || o.file !== undefined || o.patterns.length > 0 || o.maildir !== undefined, {
    message: 'give at least one of addresses, file, patterns or maildir, or set catchAll: true',
  });

type Options = z.output<typeof options>;

/**
 * Refuses unknown recipients at local domains with `550 5.1.1`, before
 * anything is accepted for them (no backscatter later). It only refuses:
 * known recipients get `next()`, so relay-access (which runs last) still
 * decides, and recipients at other domains are not its business.
 *
 * A recipient is known when any source knows it: the `addresses` list, the
 * `file`, a `pattern`, or an existing `maildir` directory. To ask your own
 * store instead, write a plugin with an rcpt handler that answers the same
 * way (see README.md).
 */
@injectable()
export default class Recipients {
  static readonly meta: PluginMeta = {
    name: 'recipients',
    version: '1.0.0',
    description: 'refuses unknown local recipients (550 5.1.1): list, file, patterns or maildir directories',
  };
  static readonly options = options;

  readonly #localDomains: Set<string>;
  readonly #table: RecipientTable;
  readonly #always: Set<string>;
  readonly #patterns: RegExp[];
  readonly #file: WatchedFile<RecipientTable> | undefined;
  readonly #maildir: string | undefined;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#localDomains = new Set(config.server.localDomains.map(asciiDomain));
    this.#table = new RecipientTable(opts.addresses);
    this.#always = new Set(opts.alwaysAccept.map((local) => local.toLowerCase()));
    this.#patterns = opts.patterns.map((source) => new RegExp(source, 'iu'));
    this.#maildir = opts.maildir === undefined ? undefined : paths.resolve(opts.maildir);
    if (opts.file !== undefined) {
      const path = paths.resolve(opts.file);
      this.#file = new WatchedFile(path, parseRecipientFile, (error) => log.error({ err: error, file: path }, `recipients file not reloaded: ${error.message}`));
    }
  }

  register(hooks: HookRegistrar): void {
    hooks.on('rcpt', (session, _transaction, recipient) => this.checkRecipient(session, recipient));
  }

  async start(): Promise<void> {
    if (this.#file) {
      const table = await this.#file.current();
      this.log.info({ file: this.#file.path, entries: table.size }, 'recipients file loaded');
    }
  }

  async checkRecipient(session: Session, recipient: Address): Promise<HookResult> {
    const parts = splitAddress(recipient.address, this.opts.subaddressSeparator);
    if (parts === undefined || !this.#localDomains.has(parts.domain)) return next();
    if (this.opts.catchAll || (await this.#known(parts.local, parts.domain))) return next();
    session.log.info({ rcpt: recipient.address }, 'unknown local recipient');
    return reject(550, '5.1.1', `<${recipient.address}>: Recipient address rejected: User unknown`);
  }

  async #known(local: string, domain: string): Promise<boolean> {
    if (this.#always.has(local) || this.#table.has(local, domain)) return true;
    const address = `${local}@${domain}`;
    if (this.#patterns.some((regex) => regex.test(address))) return true;
    if (this.#file && (await this.#file.current()).has(local, domain)) return true;
    return this.#maildir !== undefined && (await this.#maildirExists(local, domain));
  }

  async #maildirExists(local: string, domain: string): Promise<boolean> {
    // A local part becomes a path component: nothing that could leave the directory.
    if (local.startsWith('.') || /[/\\\0]/.test(local)) return false;
    const path = (this.#maildir as string).replaceAll('{user}', local).replaceAll('{domain}', domain);
    return stat(path).then(
      (info) => info.isDirectory(),
      () => false,
    );
  }
}
