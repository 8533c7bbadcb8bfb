import { stat } from 'node:fs/promises';
import { type Address, asciiDomain, checkFileAtStart, type HookRegistrar, type HookResult, inject, injectable, type Logger, next, type Paths, type PetrelConfig, type PluginMeta, regularExpression, reject, type Session, splitAddress, TOKENS, WatchedFile, z } from 'petrel';
import { parseLoginFile, parseRecipientFile, RecipientTable } from './recipient-table.js';

const pattern = regularExpression('iu');

export const options = z
  .strictObject({
    addresses: z.array(z.string().min(1)).default([]).describe('valid recipients: alice@example.org, alice (any local domain) or @example.org (whole domain)'),
    file: z.string().min(1).optional().describe('more entries like `addresses`, one a line, relative to the config file; reloaded when it changes'),
    usersFile: z
      .string()
      .min(1)
      .optional()
      .describe('an auth-file users file (login:hash lines), relative to the config file: every login is a valid recipient too (alice@example.org, or alice at every local domain); reloaded when it changes'),
    optional: z.boolean().default(false).describe('start even when `file` or `usersFile` does not exist (with a warning); otherwise a missing file stops the start'),
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
  .refine((o) => o.catchAll || o.addresses.length > 0 || o.file !== undefined || o.usersFile !== undefined || o.patterns.length > 0 || o.maildir !== undefined, {
    message: 'give at least one of addresses, file, usersFile, patterns or maildir, or set catchAll: true',
  });

type Options = z.output<typeof options>;

/**
 * Refuses unknown recipients at local domains with `550 5.1.1`, before
 * anything is accepted for them (no backscatter later). It only refuses:
 * known recipients get `next()`, so relay-access (which runs last) still
 * decides, and recipients at other domains are not its business.
 *
 * A recipient is known when any source knows it: the `addresses` list, the
 * `file`, the logins of an auth-file `usersFile` (so a user added with
 * `petrel user add` can receive mail, as Postfix's local_recipient_maps
 * reads the passwd file), a `pattern`, or an existing `maildir` directory.
 * A file that does not exist stops the start unless `optional: true`. To
 * ask your own store instead, write a plugin with an rcpt handler that
 * answers the same way (see README.md).
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
  readonly #users: WatchedFile<RecipientTable> | undefined;
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
    const watch = (file: string | undefined, parse: (text: string) => RecipientTable) => {
      if (file === undefined) return undefined;
      const path = paths.resolve(file);
      return new WatchedFile(path, parse, (error) => log.error({ err: error, file: path }, `recipients not reloaded from ${path}: ${error.message}`));
    };
    this.#file = watch(opts.file, parseRecipientFile);
    this.#users = watch(opts.usersFile, parseLoginFile);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('rcpt', (session, _transaction, recipient) => this.checkRecipient(session, recipient));
  }

  async start(): Promise<void> {
    for (const { source, what, create } of this.#files()) {
      const meanwhile = `only ${this.#sourcesBesides(source)} are valid recipients at the local domains`;
      if (!(await checkFileAtStart(source.path, { what, optional: this.opts.optional, create, meanwhile }, this.log))) continue;
      const table = await source.current();
      this.log.info({ file: source.path, entries: table.size }, `${what} loaded`);
    }
  }

  #files() {
    const files = [
      { source: this.#file, what: 'recipients file', create: 'create it (one address a line)', known: 'the entries of' },
      { source: this.#users, what: 'users file', create: 'add a user with petrel user add LOGIN (it creates the file)', known: 'the logins in' },
    ];
    return files.filter((file): file is (typeof files)[number] & { source: WatchedFile<RecipientTable> } => file.source !== undefined);
  }

  /** What makes a recipient valid besides `missing`, for the warning about a missing optional file. */
  #sourcesBesides(missing: WatchedFile<RecipientTable>): string {
    const sources = [...this.#always].map((local) => `${local}@`);
    if (this.opts.addresses.length > 0) sources.push('the addresses in the config');
    for (const { source, known } of this.#files()) if (source !== missing) sources.push(`${known} ${source.path}`);
    if (this.#patterns.length > 0) sources.push('addresses matching the patterns');
    if (this.#maildir !== undefined) sources.push('users with a maildir');
    return sources.join(', ');
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
    if (this.#users && (await this.#users.current()).has(local, domain)) return true;
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
