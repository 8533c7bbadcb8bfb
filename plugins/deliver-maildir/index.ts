import { join, resolve } from 'node:path';
import { type Delivery, type DeliveryReply, type HookRegistrar, inject, injectable, type Logger, noteFinding, type Paths, type PetrelConfig, type PluginMeta, quarantineOf, type QueuedRecipient, type RecipientResult, results, TOKENS, z } from 'petrel';
import { MailboxMap, mailboxPathProblem, type MailboxTarget } from './mailbox-map.js';
import { maildirHostName, MaildirWriter, NoSuchMailbox } from './maildir-writer.js';
import { sweepStaleTmp } from './stale-tmp.js';

const mailboxPath = z.string().min(1).superRefine((path, ctx) => {
  const problem = mailboxPathProblem(path.replaceAll('{local}', 'user').replaceAll('{domain}', 'example.org'));
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const options = z.strictObject({
  directory: z.string().min(1).default('maildir').describe('the maildir root, relative to server.dataDir'),
  mailbox: mailboxPath
    .default('{local}')
    .describe('the mailbox directory of an address under the root: {local} (one local domain) or {domain}/{local} (several)'),
  mailboxes: z
    .record(z.string().min(1), mailboxPath)
    .default({})
    .describe('address, @domain or local part → mailbox, before the template: aliases and catch-alls'),
  subaddressSeparator: z.string().max(1).default('+').describe('alice+tag@ is alice@; empty turns it off'),
  junkFolder: z
    .string()
    .regex(/^[^/\\\0.][^/\\\0]*$/, 'expected a Maildir++ folder name like Junk (no slash, no leading dot)')
    .default('Junk')
    .describe('quarantined messages (X-Petrel-Quarantine) go into this Maildir++ folder of the mailbox, .Junk by default, created when missing'),
  subaddressFolders: z.boolean().default(false).describe('deliver alice+tag@ into the Maildir++ folder .tag of alice (created on demand) instead of her inbox'),
  createMailboxes: z.boolean().default(true).describe('create missing maildirs; off, mail for an address without one bounces (550 5.1.1)'),
  lineEndings: z.enum(['crlf', 'lf']).default('crlf').describe('crlf stores the message byte for byte as received; lf converts to Unix line ends'),
  fileMode: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'an octal mode like 0600')
    .default('0600')
    .transform((mode) => Number.parseInt(mode, 8))
    .describe('permissions of message files'),
});

type Options = z.output<typeof options>;

/**
 * Local delivery into maildirs: each recipient gets the message, with
 * `Return-Path:` and `Delivered-To:` in front, as a new file in its
 * mailbox's `new/` (maildir-writer.ts: tmp → fsync → rename → fsync). Which
 * mailbox an address means is mailbox-map.ts. A full disk or quota defers;
 * a missing mailbox bounces only when mailboxes are not created on demand.
 * At start, copies that interrupted deliveries left in `tmp/` are removed
 * (stale-tmp.ts), in the background. See README.md.
 */
@injectable()
export default class DeliverMaildir {
  static readonly meta: PluginMeta = {
    name: 'deliver-maildir',
    version: '1.0.0',
    description: 'local delivery into maildirs (tmp → new with fsync), address → mailbox mapping, +tag handling',
  };
  static readonly options = options;

  readonly #root: string;
  readonly #mailboxes: MailboxMap;
  readonly #writer: MaildirWriter;
  /** The Maildir++ folder quarantined mail goes into: `.Junk`. */
  readonly #junk: string;
  /** A bare `postmaster` (RFC 5321 4.5.1) is the postmaster of the first local domain (or of our hostname). */
  readonly #ownDomain: string;
  /** The sweep of tmp/ started by start(); close() waits for it. */
  #sweep: Promise<void> | undefined;

  constructor(
    @inject(TOKENS.PluginOptions) opts: Options,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#ownDomain = config.server.localDomains[0] ?? config.server.hostname;
    this.#root = resolve(paths.dataDir, opts.directory);
    this.#mailboxes = new MailboxMap({
      template: opts.mailbox,
      mailboxes: opts.mailboxes,
      separator: opts.subaddressSeparator,
      folders: opts.subaddressFolders,
    });
    this.#junk = `.${opts.junkFolder}`;
    this.#writer = new MaildirWriter({ create: opts.createMailboxes, lineEndings: opts.lineEndings, fileMode: opts.fileMode });
  }

  register(hooks: HookRegistrar): void {
    hooks.on('deliver', (delivery) => this.deliver(delivery));
  }

  /** Sweeps stale copies out of tmp/ without holding up the start (a large maildir root takes a while to walk). */
  start(): void {
    this.#sweep = sweepStaleTmp(this.#root, maildirHostName(), Date.now()).then(
      ({ removed, kept }) => {
        const level = removed.length > 0 ? 'info' : 'debug';
        this.log[level]({ root: this.#root, removed: removed.length, kept }, `maildir tmp/ swept: ${removed.length} stale file(s) removed`);
      },
      (error: unknown) => this.log.warn({ root: this.#root, err: error }, `could not sweep maildir tmp/: ${(error as Error).message}`),
    );
  }

  async close(): Promise<void> {
    await this.#sweep;
  }

  async deliver(delivery: Delivery): Promise<RecipientResult[]> {
    const quarantine = await quarantineOf(delivery);
    if (quarantine !== undefined) noteFinding(delivery, 'deliver-maildir', `quarantined (${quarantine}): filed in ${this.#junk}`);
    const answers: RecipientResult[] = [];
    for (const recipient of delivery.recipients) answers.push(await this.#deliverOne(delivery, recipient, quarantine !== undefined));
    return answers;
  }

  async #deliverOne(delivery: Delivery, recipient: QueuedRecipient, quarantined: boolean): Promise<RecipientResult> {
    const address = recipient.address.includes('@') ? recipient.address : `${recipient.address}@${this.#ownDomain}`;
    const mapped = this.#mailboxes.targetOf(address);
    if (!mapped) return results.bounced(recipient.address, { code: 550, enhanced: '5.1.3', text: `<${recipient.address}>: not a mailbox address` });
    // Quarantine wins over a +tag folder: junk must not reach a folder the user reads as mail.
    const target = quarantined ? { mailbox: mapped.mailbox, folder: this.#junk } : mapped;
    const header = `Return-Path: <${delivery.message.envelope.from}>\r\nDelivered-To: ${recipient.address}\r\n`;
    try {
      const file = await this.#writer.deliver(join(this.#root, target.mailbox), target.folder, header, await delivery.open());
      delivery.log.debug({ rcpt: recipient.address, file, quarantined }, 'stored in maildir');
      return results.delivered(recipient.address, { code: 250, enhanced: '2.0.0', text: `delivered to mailbox ${describe(target)}${quarantined ? ' (quarantined)' : ''}` });
    } catch (error) {
      const reply = failureReply(error, recipient.address);
      if (reply.code >= 500) return results.bounced(recipient.address, reply);
      delivery.log.error({ rcpt: recipient.address, mailbox: target.mailbox, err: error }, `maildir delivery failed: ${(error as Error).message}`);
      return results.deferred(recipient.address, reply);
    }
  }
}

function describe(target: MailboxTarget): string {
  return target.folder ? `${target.mailbox}/${target.folder}` : target.mailbox;
}

/** A missing mailbox is the sender's problem (bounce); a full or broken disk is ours (retry). */
function failureReply(error: unknown, address: string): DeliveryReply {
  if (error instanceof NoSuchMailbox) return { code: 550, enhanced: '5.1.1', text: `<${address}>: no such mailbox` };
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EDQUOT') return { code: 452, enhanced: '4.2.2', text: `<${address}>: mailbox full (quota)` };
  if (code === 'ENOSPC') return { code: 452, enhanced: '4.3.1', text: 'mail system full, will retry' };
  return { code: 451, enhanced: '4.3.0', text: `local error writing the mailbox, will retry${code ? ` (${code})` : ''}` };
}
