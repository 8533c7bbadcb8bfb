import { dkimSign, type DKIMSignOptions } from 'mailauth';
import addressparser from 'nodemailer/lib/addressparser';
import { cidr, type Delivery, domainOf, duration, type HookRegistrar, inject, injectable, type Logger, NetworkList, type OutboundMessage, type OutgoingContent, type Paths, type PluginMeta, TOKENS, z } from 'petrel';
import { dkimRecordValue, zoneFileLine } from './dkim-record.js';
import { keygenCommand } from './keygen-command.js';
import { SigningKeys } from './signing-keys.js';

export const options = z.strictObject({
  keys: z
    .array(
      z.strictObject({
        domain: z.string().min(1).describe('the signing domain (d=)'),
        selector: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'a selector like s2026 or mail._eu').describe('the selector (s=): the key record is <selector>._domainkey.<domain>'),
        keyFile: z.string().min(1).describe('PEM private key (RSA or Ed25519), relative to the config file; made by petrel dkim keygen'),
      }),
    )
    .default([])
    .describe('every key signs for its domain; two keys for one domain (RSA and Ed25519) give two signatures'),
  domainFrom: z
    .enum(['header', 'envelope'])
    .default('header')
    .describe('which address picks the signing domain: the From: header (what DMARC aligns with) or the envelope sender'),
  parentDomains: z.boolean().default(true).describe('sign mail from sub.example.org with the keys of example.org when it has none of its own'),
  headers: z
    .array(z.string().regex(/^[\x21-\x39\x3b-\x7e]+$/, 'a header field name'))
    .optional()
    .describe('header fields to sign (h=); default: mailauth’s list (From, To, Subject, Date, Message-ID, MIME fields…)'),
  canonicalization: z.enum(['relaxed/relaxed', 'relaxed/simple', 'simple/relaxed', 'simple/simple']).default('relaxed/relaxed'),
  expireAfter: duration().optional().describe('signatures carry x= this long after signing (unset: they do not expire)'),
  origins: z
    .strictObject({
      authenticated: z.boolean().default(true).describe('mail from users who logged in (submission)'),
      networks: z.array(cidr()).default([]).describe('mail from clients in these networks without login (your applications)'),
      generated: z.boolean().default(true).describe('mail Petrel writes itself (delivery status notifications)'),
    })
    .prefault({})
    .describe('whose mail is signed: never mail that merely passes through from strangers'),
  targets: z.array(z.string().min(1)).optional().describe('sign only deliveries through these targets (e.g. [relay-mx, relay-smarthost]); unset: every delivery'),
});

type Options = z.output<typeof options>;

/**
 * Signs outgoing mail with DKIM in the `transform` hook, so each delivery
 * attempt gets a fresh signature over exactly the bytes that go out (after
 * every other header edit). The signing domain is the From: domain (or the
 * envelope sender's); every key configured for it signs (RSA and Ed25519
 * together when both exist). Only mail that is ours to vouch for is signed:
 * from authenticated users, listed networks, or Petrel's own DSNs. Signing
 * is done by mailauth. See README.md.
 */
@injectable()
export default class DkimSign {
  static readonly meta: PluginMeta = {
    name: 'dkim-sign',
    version: '1.0.0',
    description: 'DKIM-signs outgoing mail (RSA and Ed25519) per sender domain',
  };
  static readonly options = options;
  static readonly commands = [keygenCommand];

  #keys: SigningKeys | undefined;
  readonly #networks: NetworkList;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Paths) private readonly paths: Paths,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#networks = new NetworkList(opts.origins.networks);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('transform', (delivery, content) => this.sign(delivery, content));
  }

  start(): void {
    this.#keys = new SigningKeys(this.opts.keys, (path) => this.paths.resolve(path));
    for (const key of this.#keys.all) {
      this.log.info({ domain: key.domain, selector: key.selector, algorithm: key.type, record: zoneFileLine(key.domain, key.selector, dkimRecordValue(key.key)) }, `DKIM key for ${key.domain} loaded; its DNS record must read as logged`);
    }
    if (this.#keys.all.length === 0) this.log.warn('dkim-sign has no keys: nothing is signed (make one with npx petrel dkim keygen)');
  }

  async sign(delivery: Delivery, content: OutgoingContent): Promise<void> {
    if (!this.#keys || !this.#eligible(delivery)) return;
    const domain = this.#signingDomain(delivery.message, content);
    if (!domain) return;
    const keys = this.#keys.for(domain, this.opts.parentDomains);
    if (keys.length === 0) return;
    const now = Date.now();
    const signing = {
      canonicalization: this.opts.canonicalization,
      signTime: new Date(now),
      ...(this.opts.expireAfter ? { expires: new Date(now + this.opts.expireAfter) } : {}),
      ...(this.opts.headers ? { headerList: this.opts.headers } : {}),
      signatureData: keys.map((key) => ({ signingDomain: key.domain, selector: key.selector, privateKey: key.pem })),
    } as DKIMSignOptions;
    const { signatures, errors } = await dkimSign(await content.stream(), signing);
    for (const { err, signingDomain, selector } of errors ?? []) {
      delivery.log.error({ domain: signingDomain, selector, err }, `DKIM signing failed for ${signingDomain}: ${err.message}`);
    }
    // mailauth returns the fields in order, each folded and ending in CRLF; the first stays first.
    for (const field of splitFields(signatures).reverse()) content.headers.prepend('DKIM-Signature', field);
    delivery.log.debug({ domain, selectors: keys.map((k) => k.selector) }, 'DKIM signed');
  }

  #eligible(delivery: Delivery): boolean {
    if (this.opts.targets && !this.opts.targets.includes(delivery.route.target ?? '')) return false;
    const { origin } = delivery.message;
    const { origins } = this.opts;
    if (origin.generated) return origins.generated;
    if (origin.user !== undefined && origins.authenticated) return true;
    return this.#networks.contains(origin.remoteAddress);
  }

  #signingDomain(message: OutboundMessage, content: OutgoingContent): string | undefined {
    if (this.opts.domainFrom === 'envelope') return message.envelope.from === '' ? undefined : domainOf(message.envelope.from);
    const from = content.headers.getFirst('From');
    const address = from ? addressparser(from, { flatten: true }).find((entry) => entry.address)?.address : undefined;
    return address ? domainOf(address) : undefined;
  }
}

/** `DKIM-Signature: a\r\n b\r\nDKIM-Signature: c\r\n` → the values, folding kept. */
function splitFields(signatures: string): string[] {
  return signatures
    .split(/\r?\n(?![ \t])/)
    .filter((field) => field.trim() !== '')
    .map((field) => field.replace(/^DKIM-Signature:\s*/i, '').replace(/\r?\n/g, '\r\n'));
}
