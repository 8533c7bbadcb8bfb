import { readFile } from 'node:fs/promises';
import { authenticate, spf, type ARCSealOptions, type AuthenticateResult, type DNSResolver, type SPFResult } from 'mailauth';
import { addPolicyMark, type Address, checkAction, cidr, type DnsResolver, duration, type HookRegistrar, type HookResult, type IncomingMessage, inject, injectable, isMark, type Logger, NetworkList, next, noteFinding, type Paths, type PetrelConfig, type PluginMeta, type Session, severest, TOKENS, type Transaction, unmapIPv4, writePolicyMarks, z } from 'petrel';
import { untilAborted } from './abortable-resolver.js';
import { memoResolver } from './memo-resolver.js';
import { authservIdOf, receivedSpfClaims, splitHeaderFields } from './trace-headers.js';
import { arcSealerOf, dkimResultOf, refusalFor, withoutReporter, type Verdict } from './verdicts.js';

const act = (fallback: z.output<ReturnType<typeof checkAction>>) => checkAction().default(fallback);

export const options = z.strictObject({
  authservId: z.string().min(1).optional().describe('the name in Authentication-Results; server.hostname when not set'),
  strict: z.boolean().default(true).describe('evaluate and report exactly as the RFCs say (mailauth strict mode)'),
  skipNetworks: z.array(cidr()).default(['127.0.0.0/8', '::1/128']).describe('clients whose mail is not verified (forged headers are still removed)'),
  minKeyBits: z.number().int().min(512).default(1024).describe('shorter DKIM/ARC RSA keys fail'),
  spf: z
    .strictObject({
      fail: act('tag'),
      softfail: act('ignore'),
      neutral: act('ignore'),
      none: act('ignore'),
      temperror: act('ignore'),
      permerror: act('ignore'),
      timeout: duration().prefault('8s').describe('the whole SPF evaluation; past it the result is temperror'),
    })
    .prefault({})
    .describe('checked at MAIL FROM, so reject and defer answer the MAIL command'),
  dkim: z
    .strictObject({ fail: act('ignore'), neutral: act('ignore'), policy: act('ignore'), none: act('ignore'), temperror: act('ignore'), permerror: act('ignore') })
    .prefault({}),
  dmarc: z
    .strictObject({
      enforce: z.boolean().default(true).describe("follow the sender domain's published policy: p=reject rejects, p=quarantine quarantines"),
      fail: act('tag').describe('for a failure whose domain publishes p=none, or every failure when enforce is off'),
      temperror: act('ignore'),
      permerror: act('ignore'),
    })
    .prefault({}),
  arc: z
    .strictObject({
      fail: act('ignore'),
      trustedSealers: z.array(z.string().min(1)).default([]).describe('forwarders (mailing lists) whose valid ARC seal overrides a DMARC failure'),
      seal: z
        .strictObject({
          domain: z.string().min(1),
          selector: z.string().min(1),
          privateKey: z.string().min(1).describe('PEM file, relative to the config file'),
        })
        .optional()
        .describe('add an ARC set to every verified message (for forwarding hosts)'),
    })
    .prefault({}),
});

type Options = z.output<typeof options>;

const RESOLVER_NOTE = 'mailauth:resolver';

/**
 * SPF, DKIM, DMARC and ARC with mailauth, through Petrel's resolver:
 *
 *   MAIL FROM  SPF for the client address, HELO and sender; reject or defer answer MAIL.
 *   message    authenticate(): DKIM, SPF (same answers), ARC, DMARC. Forged
 *              Authentication-Results in our name are removed, ours and
 *              Received-SPF are added on top, then each result's action applies.
 *
 * Authenticated users and skipNetworks are not verified; their messages
 * get `auth=pass smtp.auth=<user>` instead, and forged headers are removed
 * for every message.
 */
@injectable()
export default class MailAuth {
  static readonly meta: PluginMeta = {
    name: 'mailauth',
    version: '1.0.0',
    description: 'SPF, DKIM, DMARC and ARC verification with Authentication-Results; per-result policy; optional ARC sealing',
  };
  static readonly options = options;

  readonly #authservId: string;
  readonly #skip: NetworkList;
  readonly #trustedSealers: Set<string>;
  #seal: ARCSealOptions | undefined;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Dns) private readonly dns: DnsResolver,
    @inject(TOKENS.Paths) private readonly paths: Paths,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#authservId = (opts.authservId ?? config.server.hostname).toLowerCase();
    this.#skip = new NetworkList(opts.skipNetworks);
    this.#trustedSealers = new Set(opts.arc.trustedSealers.map((domain) => domain.toLowerCase()));
  }

  register(hooks: HookRegistrar): void {
    hooks.on('mail', (session, transaction, from, signal) => this.checkSpf(session, transaction, from, signal));
    hooks.on('message', (session, transaction, message, signal) => this.verifyMessage(session, transaction, message, signal));
  }

  async start(): Promise<void> {
    const seal = this.opts.arc.seal;
    if (seal) {
      const path = this.paths.resolve(seal.privateKey);
      const privateKey = await readFile(path, 'utf8').catch((error: Error) => {
        throw new Error(`arc.seal.privateKey ${path}: ${error.message}`);
      });
      this.#seal = { signingDomain: seal.domain, selector: seal.selector, privateKey };
    }
  }

  /** `signal` is the hook's: it fires at the hook timeout, and the check then stops (see untilAborted). */
  async checkSpf(session: Session, transaction: Transaction, from: Address, signal: AbortSignal): Promise<HookResult> {
    if (this.#trusted(session)) return next();
    const result = await spf({
      sender: from.address,
      ip: unmapIPv4(session.remote.address),
      helo: session.helo,
      mta: this.#authservId,
      resolver: untilAborted(this.#resolverFor(transaction), signal),
      strict: this.opts.strict,
      maxElapsedTime: this.opts.spf.timeout,
    });
    if (signal.aborted) return this.#abandoned(transaction, 'SPF check');
    const verdict = this.#spfVerdict(result);
    transaction.log.info({ spf: verdict.result, action: verdict.action }, 'SPF checked');
    noteFinding(transaction, 'mailauth', `spf=${verdict.result}${verdict.detail ? ` (${verdict.detail})` : ''}${verdict.action === 'ignore' ? '' : `, action ${verdict.action}`}`);
    if (verdict.action === 'reject' || verdict.action === 'defer') return refusalFor(verdict);
    if (isMark(verdict.action)) addPolicyMark(transaction, verdict.action, `spf=${verdict.result} (${verdict.detail})`);
    return next();
  }

  async verifyMessage(session: Session, transaction: Transaction, message: IncomingMessage, signal: AbortSignal): Promise<HookResult> {
    this.#removeForgedHeaders(message, transaction);
    if (this.#trusted(session)) {
      if (session.user !== undefined) {
        message.headers.prepend('Authentication-Results', `${this.#authservId}; auth=pass smtp.auth=${session.user}`);
      }
      writePolicyMarks(transaction, message);
      return next();
    }
    const result = await authenticate(message.stream(), {
      sender: transaction.from.address,
      ip: unmapIPv4(session.remote.address),
      helo: session.helo,
      mta: this.#authservId,
      resolver: untilAborted(this.#resolverFor(transaction), signal),
      strict: this.opts.strict,
      minBitLength: this.opts.minKeyBits,
      disableBimi: true,
      seal: this.#seal,
    });
    // The client was answered 451 at the timeout: leave the message as it is.
    if (signal.aborted) return this.#abandoned(transaction, 'message authentication');
    if (result.arc && result.arc.sealErrors?.length) {
      transaction.log.warn({ errors: result.arc.sealErrors }, 'ARC seal not added');
    }
    // Prepending in reverse keeps mailauth's order at the top of the message.
    for (const field of splitHeaderFields(result.headers).reverse()) message.headers.prepend(field.name, field.value);

    const verdicts = this.#messageVerdicts(result);
    transaction.log.info(Object.fromEntries(verdicts.map((v) => [v.check, v.result])), 'message authentication checked');
    for (const v of verdicts) noteFinding(transaction, 'mailauth', `${v.check}=${v.result} (${v.detail})${v.action === 'ignore' ? '' : `, action ${v.action}`}`);
    const action = severest(verdicts.map((verdict) => verdict.action));
    if (action === 'reject' || action === 'defer') {
      return refusalFor(verdicts.find((verdict) => verdict.action === action) as Verdict);
    }
    for (const verdict of verdicts) {
      if (isMark(verdict.action)) addPolicyMark(transaction, verdict.action, `${verdict.check}=${verdict.result} (${verdict.detail})`);
    }
    writePolicyMarks(transaction, message);
    return next();
  }

  /** DKIM, DMARC and ARC; SPF was judged at MAIL FROM (its marks are already recorded). */
  #messageVerdicts(result: AuthenticateResult): Verdict[] {
    const dkim = dkimResultOf(result);
    const dkimAction = dkim.result === 'pass' ? 'ignore' : this.opts.dkim[dkim.result as keyof Options['dkim']] ?? 'ignore';
    const arcResult = result.arc ? result.arc.status.result : 'none';
    return [
      this.#dmarcVerdict(result),
      { check: 'dkim', result: dkim.result, action: dkimAction, detail: dkim.domain || 'no signature' },
      { check: 'arc', result: arcResult, action: arcResult === 'fail' ? this.opts.arc.fail : 'ignore', detail: arcResult },
    ];
  }

  #dmarcVerdict(result: AuthenticateResult): Verdict {
    if (!result.dmarc) return { check: 'dmarc', result: 'none', action: 'ignore', detail: result.dmarcSkipReason ?? 'no author domain' };
    const outcome = result.dmarc.status.result;
    const domain = result.dmarc.status.header?.from ?? result.dmarc.domain;
    if (outcome === 'temperror' || outcome === 'permerror') return { check: 'dmarc', result: outcome, action: this.opts.dmarc[outcome], detail: domain };
    if (outcome !== 'fail') return { check: 'dmarc', result: outcome, action: 'ignore', detail: domain };
    const sealer = arcSealerOf(result);
    if (sealer !== undefined && this.#trustedSealers.has(sealer)) {
      this.log.info({ domain, sealer }, 'DMARC failure overridden by a trusted ARC sealer');
      return { check: 'dmarc', result: outcome, action: 'ignore', detail: domain };
    }
    // mailauth's policy is the one that applies to this domain (p, sp or np; one step milder with t=y).
    const published = result.dmarc.policy;
    if (!this.opts.dmarc.enforce) return { check: 'dmarc', result: outcome, action: this.opts.dmarc.fail, detail: `${domain}: p=${published}, not enforced` };
    const required = published === 'reject' ? 'reject' : published === 'quarantine' ? 'quarantine' : 'ignore';
    return { check: 'dmarc', result: outcome, action: severest([required, this.opts.dmarc.fail]), detail: `${domain}: p=${published}` };
  }

  #spfVerdict(result: SPFResult): Verdict {
    const outcome = result.status.result;
    const action = outcome === 'pass' ? 'ignore' : this.opts.spf[outcome as keyof Omit<Options['spf'], 'timeout'>] ?? 'ignore';
    return { check: 'spf', result: outcome, action, detail: withoutReporter(result.status.comment, this.#authservId) };
  }

  /** RFC 8601 5: Authentication-Results in our name that came with the message are forgeries. */
  #removeForgedHeaders(message: IncomingMessage, transaction: Transaction): void {
    const forged =
      message.headers.removeWhere('Authentication-Results', (value) => authservIdOf(value) === this.#authservId) +
      message.headers.removeWhere('Received-SPF', (value) => receivedSpfClaims(value, this.#authservId));
    if (forged > 0) transaction.log.info({ removed: forged }, 'removed forged authentication headers claiming our name');
  }

  #abandoned(transaction: Transaction, what: string): HookResult {
    transaction.log.warn({ plugin: MailAuth.meta.name }, `${what} abandoned: the hook timed out, the client was answered 451 and will try again`);
    return next();
  }

  #trusted(session: Session): boolean {
    return session.user !== undefined || this.#skip.contains(session.remote.address);
  }

  #resolverFor(transaction: Transaction): DNSResolver {
    let resolver = transaction.notes.get(RESOLVER_NOTE) as DNSResolver | undefined;
    if (!resolver) {
      resolver = memoResolver(this.dns);
      transaction.notes.set(RESOLVER_NOTE, resolver);
    }
    return resolver;
  }
}
