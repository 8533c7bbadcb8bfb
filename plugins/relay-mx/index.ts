import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { asciiDomain, type Delivery, type DnsResolver, domainOf, duration, type HookRegistrar, inject, injectable, type Logger, noteFinding, type Paths, type PetrelConfig, type PluginMeta, port, type QueuedRecipient, type RecipientResult, TOKENS, z } from 'petrel';
import { ConnectionPool, poolOptions, sendPooled, type SmtpSession } from 'petrel/delivery';
import { ExchangeConnector } from './exchange-connector.js';
import { exchangesOf } from './exchanges.js';
import { MtaSts } from './mta-sts.js';
import { PolicyCache } from './mta-sts-cache.js';
import { openFirstExchange } from './mx-walk.js';

export const options = z.strictObject({
  port: port().default(25).describe('the SMTP port of every MX'),
  heloName: z.string().min(1).optional().describe('the name we give with EHLO; default server.hostname'),
  localAddress: z
    .string()
    .refine((value) => isIP(value) !== 0, 'an IPv4 or IPv6 address of this machine')
    .optional()
    .describe('the local address outgoing connections come from'),
  ipv6: z.enum(['on', 'prefer', 'off']).default('on').describe('use IPv6 addresses of MX hosts: on (after IPv4), prefer (before IPv4) or off'),
  allowLocalDestinations: z
    .boolean()
    .default(false)
    .describe('allow MX hosts on loopback, private and link-local addresses (labs and tests); off, such MX records are refused'),
  exchangePorts: z
    .record(z.string().min(1), port())
    .default({})
    .describe('MX hosts (by name) reached on another port than `port`: labs, tests, port forwarding'),
  tls: z
    .strictObject({
      mode: z
        .enum(['opportunistic', 'required'])
        .default('opportunistic')
        .describe('opportunistic: STARTTLS whenever offered; required: never send in plaintext (certificates are still not checked unless a policy asks)'),
      plaintextFallback: z
        .boolean()
        .default(true)
        .describe('with opportunistic TLS, send in plaintext when the TLS handshake fails (never when MTA-STS, DANE or REQUIRETLS ask for TLS)'),
      ca: z.array(z.string().min(1)).default([]).describe('extra CA certificate files (PEM) trusted when a certificate must be valid'),
      minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    })
    .prefault({}),
  mtaSts: z
    .strictObject({
      enabled: z.boolean().default(true).describe('honour the MTA-STS policies of recipient domains (RFC 8461)'),
      cacheFile: z.string().min(1).default('relay-mx/mta-sts.json').describe('where policies are kept across restarts, relative to dataDir'),
    })
    .prefault({}),
  dane: z
    .strictObject({
      enabled: z
        .boolean()
        .default(false)
        .describe('check MX certificates against TLSA records (RFC 7672); needs a DNSSEC-validating resolver'),
    })
    .prefault({}),
  timeouts: z
    .strictObject({
      connect: duration().prefault('30s').describe('TCP connect, per address'),
      greeting: duration().prefault('1m').describe('wait for the 220 greeting'),
      idle: duration().prefault('2m').describe('longest silence of the server within a session'),
    })
    .prefault({}),
  pool: poolOptions({ maxConnections: 10, maxMessagesPerConnection: 100, idleTimeout: '2s' }),
});

type Options = z.output<typeof options>;

/**
 * Direct delivery to the Internet: for each recipient domain, its MX hosts
 * in preference order (exchanges.ts), the first that takes a session
 * (mx-walk.ts, exchange-connector.ts: mx-connect plus nodemailer's
 * SMTPConnection), then one transaction for the group with a result per
 * recipient. Connections are kept for the next message to the same domain
 * (core/delivery/smtp-client/connection-pool.ts). See README.md.
 */
@injectable()
export default class RelayMx {
  static readonly meta: PluginMeta = {
    name: 'relay-mx',
    version: '1.0.0',
    description: 'delivers to the recipient domain’s MX hosts: STARTTLS, MTA-STS, DANE, REQUIRETLS, connection reuse',
  };
  static readonly options = options;

  readonly #policies: PolicyCache;
  readonly #mtaSts: MtaSts;
  readonly #connector: ExchangeConnector;
  readonly #pool: ConnectionPool<SmtpSession>;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Dns) private readonly dns: DnsResolver,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#policies = new PolicyCache(join(paths.dataDir, opts.mtaSts.cacheFile), log);
    this.#mtaSts = new MtaSts(this.#policies, dns, !opts.allowLocalDestinations, log);
    this.#connector = new ExchangeConnector(
      {
        port: opts.port,
        exchangePorts: Object.fromEntries(Object.entries(opts.exchangePorts).map(([name, p]) => [name.toLowerCase().replace(/\.$/, ''), p])),
        heloName: opts.heloName ?? config.server.hostname,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        blockLocalAddresses: !opts.allowLocalDestinations,
        ipv6: opts.ipv6,
        dane: opts.dane.enabled,
        tls: { ...opts.tls, ca: opts.tls.ca.map((file) => readFileSync(paths.resolve(file), 'utf8')) },
        timeouts: { connect: opts.timeouts.connect, greeting: opts.timeouts.greeting, socket: opts.timeouts.idle },
      },
      dns,
      log,
    );
    this.#pool = new ConnectionPool<SmtpSession>(opts.pool);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('deliver', (delivery) => this.deliver(delivery));
  }

  async start(): Promise<void> {
    if (this.opts.mtaSts.enabled) await this.#policies.load();
    if (this.opts.dane.enabled && !this.dns.resolveDnssec) {
      this.log.warn('dane.enabled, but the DNS resolver cannot tell DNSSEC-validated answers: DANE will never apply');
    }
  }

  close(): void {
    this.#pool.close();
  }

  async deliver(delivery: Delivery): Promise<RecipientResult[]> {
    // A route normally groups by domain; a custom one may not, so each domain is its own transaction.
    const byDomain = new Map<string, QueuedRecipient[]>();
    for (const recipient of delivery.recipients) {
      const domain = asciiDomain(domainOf(recipient.address));
      byDomain.set(domain, [...(byDomain.get(domain) ?? []), recipient]);
    }
    const answers: RecipientResult[] = [];
    for (const [domain, recipients] of byDomain) answers.push(...(await this.#deliverTo(domain, recipients, delivery)));
    return answers;
  }

  #deliverTo(domain: string, recipients: readonly QueuedRecipient[], delivery: Delivery): Promise<RecipientResult[]> {
    const requireTls = delivery.message.envelope.requireTls;
    // A connection set up for ordinary mail may lack what a REQUIRETLS message needs: separate pools.
    const key = requireTls ? `${domain} requiretls` : domain;
    return sendPooled(this.#pool, key, () => this.#open(domain, requireTls, delivery), delivery, recipients);
  }

  /** A new session for `domain`: its MX hosts, its MTA-STS policy, the first MX that takes us. */
  async #open(domain: string, requireTls: boolean, delivery: Delivery): Promise<SmtpSession> {
    // REQUIRETLS mail needs to know whether the MX records were validated, DANE or not (RFC 8689 4.2.1).
    const exchanges = await exchangesOf(domain, this.dns, { dnssec: this.opts.dane.enabled || requireTls });
    // An address literal has no domain to publish a policy for.
    const policy = this.opts.mtaSts.enabled && !domain.startsWith('[') ? await this.#mtaSts.policyOf(domain) : undefined;
    const judge = (exchange: string) => this.#mtaSts.judge(domain, exchange, policy);
    const note = (text: string) => noteFinding(delivery, 'relay-mx', text);
    if (policy && policy.mode !== 'none') note(`MTA-STS policy of ${domain}: mode ${policy.mode}, mx ${(policy.mx ?? []).join(' ')}`);
    note(`MX of ${domain}: ${exchanges.map((e) => `${e.name} (${e.priority})`).join(', ') || 'none'}`);
    return openFirstExchange({ domain, requireTls, signal: delivery.signal, log: delivery.log, judge, note }, exchanges, this.#connector);
  }
}
