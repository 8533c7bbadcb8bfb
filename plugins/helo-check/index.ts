import { addPolicyMark, asciiDomain, checkAction, type CheckAction, cidr, defer, type DnsResolver, type HookRegistrar, type HookResult, type IncomingMessage, inject, injectable, isMark, isNoRecord, type Logger, NetworkList, next, noteFinding, type PermanentCode, type PermanentEnhancedCode, type PetrelConfig, type PluginMeta, reject, type Session, severest, TOKENS, type Transaction, writePolicyMarks, z } from 'petrel';
import { classifyHelo, sameAddress } from './helo-name.js';

export const options = z.strictObject({
  checks: z
    .strictObject({
      invalid: checkAction().default('reject').describe('not a host name or an address literal (501 5.5.2)'),
      bareAddress: checkAction().default('reject').describe('an IP address without brackets, 192.0.2.1 instead of [192.0.2.1] (501 5.5.2)'),
      notFqdn: checkAction().default('reject').describe('a name without a dot, like "localhost" or "PC-17" (504 5.5.2)'),
      forged: checkAction().default('reject').describe("our own host name, one of our local domains or names, or our address (550 5.7.1)"),
      literalMismatch: checkAction().default('ignore').describe("an address literal that is not the client's address, common behind NAT (550 5.7.1)"),
      unresolvable: checkAction().default('ignore').describe('a name with no A, AAAA or MX record (550 5.7.1); DNS failures never count'),
    })
    .prefault({}),
  ourNames: z.array(z.string().min(1)).default([]).describe('more names only this server may use (server.hostname and localDomains always count)'),
  skipNetworks: z.array(cidr()).default(['127.0.0.0/8', '::1/128']).describe('clients whose HELO is not checked'),
});

type Options = z.output<typeof options>;
type CheckName = keyof Options['checks'];

interface Finding {
  readonly check: CheckName;
  readonly action: CheckAction;
}

const REPLIES: Record<CheckName, { code: PermanentCode; enhanced: PermanentEnhancedCode; text: string }> = {
  invalid: { code: 501, enhanced: '5.5.2', text: 'Invalid name' },
  bareAddress: { code: 501, enhanced: '5.5.2', text: 'an address must be given as a literal like [192.0.2.1]' },
  notFqdn: { code: 504, enhanced: '5.5.2', text: 'need fully-qualified hostname' },
  forged: { code: 550, enhanced: '5.7.1', text: 'You are not me' },
  literalMismatch: { code: 550, enhanced: '5.7.1', text: 'address literal is not your address' },
  unresolvable: { code: 550, enhanced: '5.7.1', text: 'Host not found' },
};

/**
 * Checks the name a client gave with HELO/EHLO: syntax, a bare IP, a name
 * without a dot, a name or address that is ours, an address literal that is
 * not the client's, a name that does not resolve. Each check maps to an
 * action (ignore, tag, quarantine, defer, reject).
 *
 * The verdict is given at MAIL FROM, not at HELO (as Postfix does by
 * default): a mail client on a laptop says EHLO with whatever name it has,
 * then authenticates, and authenticated sessions are not judged by their HELO.
 */
@injectable()
export default class HeloCheck {
  static readonly meta: PluginMeta = {
    name: 'helo-check',
    version: '1.0.0',
    description: 'refuses invalid and forged HELO/EHLO names (checked at MAIL FROM, after AUTH)',
  };
  static readonly options = options;

  readonly #ourNames: Set<string>;
  readonly #skip: NetworkList;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Dns) private readonly dns: DnsResolver,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#ourNames = new Set([config.server.hostname, ...config.server.localDomains, ...opts.ourNames].map((name) => asciiDomain(name.replace(/\.$/, ''))));
    this.#skip = new NetworkList(opts.skipNetworks);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('mail', (session, transaction) => this.judge(session, transaction));
    hooks.on('message', (_session, transaction, message) => this.mark(transaction, message));
  }

  async judge(session: Session, transaction: Transaction): Promise<HookResult> {
    const helo = session.helo;
    if (helo === undefined || session.user !== undefined || this.#skip.contains(session.remote.address)) return next();
    const findings = (await this.findings(helo, session)).filter((finding) => finding.action !== 'ignore');
    if (findings.length === 0) return next();
    const action = severest(findings.map((finding) => finding.action));
    transaction.log.info({ helo, findings: findings.map((f) => f.check), action }, 'HELO name failed checks');
    noteFinding(transaction, 'helo-check', `HELO ${helo} failed: ${findings.map((f) => f.check).join(', ')} (action ${action})`);
    const decisive = findings.find((finding) => finding.action === action) as Finding;
    const reply = REPLIES[decisive.check];
    const text = `<${helo}>: Helo command rejected: ${reply.text}`;
    if (action === 'reject') return reject(reply.code, reply.enhanced, text);
    if (action === 'defer') return defer(450, '4.7.1', text);
    for (const finding of findings) {
      if (isMark(finding.action)) addPolicyMark(transaction, finding.action, `helo=${finding.check} (${helo})`);
    }
    return next();
  }

  mark(transaction: Transaction, message: IncomingMessage): HookResult {
    writePolicyMarks(transaction, message);
    return next();
  }

  /** Every check the name fails, with the action configured for it. */
  async findings(helo: string, session: Session): Promise<Finding[]> {
    const checks = this.opts.checks;
    const failed: CheckName[] = [];
    const name = classifyHelo(helo);
    switch (name.kind) {
      case 'invalid':
        failed.push('invalid');
        break;
      case 'bare-address':
        failed.push('bareAddress');
        break;
      case 'literal':
        if (sameAddress(name.address, session.local.address) && !sameAddress(name.address, session.remote.address)) failed.push('forged');
        else if (!sameAddress(name.address, session.remote.address)) failed.push('literalMismatch');
        break;
      case 'hostname':
        if (this.#ourNames.has(asciiDomain(name.name))) failed.push('forged');
        if (!name.qualified) failed.push('notFqdn');
        else if (checks.unresolvable !== 'ignore' && (await this.#unresolvable(name.name, session))) failed.push('unresolvable');
        break;
    }
    return failed.map((check) => ({ check, action: checks[check] }));
  }

  /** True only when DNS says the name has no address and no MX; a failing lookup proves nothing. */
  async #unresolvable(name: string, session: Session): Promise<boolean> {
    const outcomes = await Promise.allSettled((['A', 'AAAA', 'MX'] as const).map((type) => this.dns.resolve(name, type)));
    if (outcomes.some((outcome) => outcome.status === 'fulfilled' && outcome.value.length > 0)) return false;
    const failure = outcomes.find((outcome) => outcome.status === 'rejected' && !isNoRecord(outcome.reason));
    if (failure) {
      this.log.debug({ sid: session.id, helo: name, err: (failure as PromiseRejectedResult).reason }, 'HELO name lookup failed; not judged');
      return false;
    }
    return true;
  }
}
