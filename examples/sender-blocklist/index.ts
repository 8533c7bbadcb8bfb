import { type Address, type HookRegistrar, inject, injectable, type Logger, next, type PluginMeta, reject, type Session, TOKENS, type Transaction, z } from 'petrel';

/**
 * An example plugin, built step by step in docs/writing-a-plugin.md: refuses
 * mail from sender domains listed in its options, and stamps the messages it
 * lets through with a header saying they were checked. It imports Petrel
 * by its package name, as it would in a package of its own.
 */
const options = z.strictObject({
  /** Sender domains to refuse, lower case. */
  domains: z.array(z.string().min(1)).min(1),
  /** What the client is told. */
  message: z.string().default('Mail from your domain is not accepted here'),
});

@injectable()
export default class SenderBlocklist {
  static readonly meta: PluginMeta = { name: 'sender-blocklist', version: '1.0.0', description: 'refuses listed sender domains' };
  static readonly options = options;

  readonly #blocked: Set<string>;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: z.output<typeof options>,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#blocked = new Set(opts.domains.map((domain) => domain.toLowerCase()));
  }

  register(hooks: HookRegistrar): void {
    hooks.on('mail', (session, transaction, from) => this.checkSender(session, transaction, from));
    hooks.on('message', (_session, _transaction, message) => {
      message.headers.prepend('X-Sender-Checked', 'sender-blocklist');
      return next();
    });
  }

  checkSender(session: Session, _transaction: Transaction, from: Address) {
    const domain = from.address.slice(from.address.lastIndexOf('@') + 1).toLowerCase();
    if (!this.#blocked.has(domain)) return next();
    this.log.info({ sid: session.id, from: from.address }, 'sender domain blocked');
    return reject(550, '5.7.1', this.opts.message);
  }
}
