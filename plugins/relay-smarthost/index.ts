import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { type Delivery, type DnsResolver, duration, type HookRegistrar, inject, injectable, isNoRecord, type Logger, type Paths, type PetrelConfig, type PluginMeta, port, type RecipientResult, TOKENS, z } from 'petrel';
import { connectFailure, ConnectionPool, DeliveryFailure, poolOptions, sendPooled, type SmtpClientError, SmtpSession } from 'petrel/delivery';

export const options = z
  .strictObject({
    host: z.string().min(1).describe('the smarthost: a name (looked up through Petrel’s resolver) or an address'),
    port: port().default(587),
    tls: z
      .enum(['starttls', 'implicit', 'none'])
      .default('starttls')
      .describe('starttls: STARTTLS required before anything is sent; implicit: TLS from the first byte (port 465); none: plaintext, only for a relay on a trusted network'),
    verifyCertificate: z.boolean().default(true).describe('the certificate must be valid for `host` (or `servername`)'),
    servername: z.string().min(1).optional().describe('the name the certificate must carry, when `host` is an address'),
    ca: z.array(z.string().min(1)).default([]).describe('extra CA certificate files (PEM), for a smarthost with a private CA'),
    auth: z
      .strictObject({
        user: z.string().min(1),
        password: z.string().min(1).describe('write it as ${SMARTHOST_PASSWORD}: taken from the environment when the config is read'),
        method: z.enum(['PLAIN', 'LOGIN']).optional().describe('default: the first of PLAIN, LOGIN the server offers'),
      })
      .optional(),
    heloName: z.string().min(1).optional().describe('the name we give with EHLO; default server.hostname'),
    timeouts: z
      .strictObject({
        connect: duration().prefault('30s'),
        greeting: duration().prefault('1m'),
        idle: duration().prefault('2m').describe('longest silence of the server within a session'),
      })
      .prefault({}),
    pool: poolOptions({ maxConnections: 5, maxMessagesPerConnection: 100, idleTimeout: '5s' }),
  })
  .refine((opts) => !(opts.auth && opts.tls === 'none'), { message: 'auth needs TLS: credentials are never sent in plaintext (set tls: starttls or implicit)', path: ['auth'] });

type Options = z.output<typeof options>;

/**
 * Sends every message routed to it (or all mail, as the only delivery
 * target) to one relay host: the ISP's or a mail service's submission
 * server. TLS is required unless `tls: none`; with `auth`, it logs in
 * (PLAIN or LOGIN) before the first message. Connections are pooled
 * (core/delivery/smtp-client/connection-pool.ts). A problem reaching or
 * logging in to the smarthost defers mail: it is never the recipients'
 * fault. See README.md.
 */
@injectable()
export default class RelaySmarthost {
  static readonly meta: PluginMeta = {
    name: 'relay-smarthost',
    version: '1.0.0',
    description: 'delivers through one relay host (smarthost): STARTTLS or implicit TLS, AUTH, pooled connections',
  };
  static readonly options = options;

  readonly #pool: ConnectionPool<SmtpSession>;
  readonly #ca: string[];
  readonly #heloName: string;
  readonly #remoteMta: string;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Paths) paths: Paths,
    @inject(TOKENS.Dns) private readonly dns: DnsResolver,
    @inject(TOKENS.Logger) private readonly log: Logger,
  ) {
    this.#pool = new ConnectionPool<SmtpSession>(opts.pool);
    this.#ca = opts.ca.map((file) => readFileSync(paths.resolve(file), 'utf8'));
    this.#heloName = opts.heloName ?? config.server.hostname;
    this.#remoteMta = opts.host;
  }

  register(hooks: HookRegistrar): void {
    hooks.on('deliver', (delivery) => this.deliver(delivery));
  }

  close(): void {
    this.#pool.close();
  }

  async deliver(delivery: Delivery): Promise<RecipientResult[]> {
    if (delivery.message.envelope.requireTls && (this.opts.tls === 'none' || !this.opts.verifyCertificate)) {
      // RFC 8689 4.2.1: REQUIRETLS mail goes only over TLS with a verified certificate, which this
      // configuration cannot give; the sender asked for a bounce rather than a weaker hop.
      const why = this.opts.tls === 'none' ? 'relays without TLS' : 'does not verify the certificate';
      return new DeliveryFailure({ code: 550, enhanced: '5.7.30', text: `REQUIRETLS support required: the smarthost ${this.opts.host} ${why}` }).resultsFor(
        delivery.recipients.map((r) => r.address),
      );
    }
    return sendPooled(this.#pool, `${this.opts.host}:${this.opts.port}`, () => this.#open(delivery.signal), delivery);
  }

  /** Connects (each address of the host in turn), STARTTLS, AUTH; any failure is a DeliveryFailure (4xx). */
  async #open(signal: AbortSignal): Promise<SmtpSession> {
    const addresses = await this.#addresses();
    let last: SmtpClientError | undefined;
    for (const address of addresses) {
      let session: SmtpSession;
      try {
        session = await SmtpSession.open(this.#connectionOptions(address), this.#remoteMta, signal);
      } catch (error) {
        last = error as SmtpClientError;
        // Only an unreachable address is worth trying another for; a server that answered has spoken.
        if (last.response || last.code === 'ETLS') break;
        continue;
      }
      if (!this.opts.auth) return session;
      try {
        await session.login({ user: this.opts.auth.user, pass: this.opts.auth.password, ...(this.opts.auth.method ? { method: this.opts.auth.method } : {}) });
        return session;
      } catch (error) {
        session.close();
        this.log.error({ smarthost: this.opts.host, user: this.opts.auth.user, err: (error as Error).message }, 'smarthost refused our login; mail waits in the queue');
        throw new DeliveryFailure(connectFailure(error as SmtpClientError, this.#remoteMta));
      }
    }
    throw new DeliveryFailure(connectFailure(last ?? Object.assign(new Error('no address'), { code: 'EDNS' }), this.#remoteMta));
  }

  /** The host's addresses through Petrel's resolver (so `dns:` settings and tests apply), IPv4 first. */
  async #addresses(): Promise<string[]> {
    const host = this.opts.host;
    if (isIP(host) !== 0) return [host];
    const found: string[] = [];
    for (const type of ['A', 'AAAA'] as const) {
      try {
        found.push(...((await this.dns.resolve(host, type)) as string[]));
      } catch (error) {
        if (!isNoRecord(error)) {
          throw new DeliveryFailure({ code: 451, enhanced: '4.4.3', text: `DNS lookup of smarthost ${host} failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
        }
      }
    }
    if (found.length === 0) throw new DeliveryFailure({ code: 451, enhanced: '4.4.4', text: `smarthost ${host} has no address (DNS)` });
    return found;
  }

  #connectionOptions(address: string) {
    const { opts } = this;
    const servername = opts.servername ?? (isIP(opts.host) === 0 ? opts.host : undefined);
    return {
      host: address,
      port: opts.port,
      name: this.#heloName,
      secure: opts.tls === 'implicit',
      requireTLS: opts.tls === 'starttls',
      ignoreTLS: opts.tls === 'none',
      connectionTimeout: opts.timeouts.connect,
      greetingTimeout: opts.timeouts.greeting,
      socketTimeout: opts.timeouts.idle,
      ...(servername ? { servername } : {}),
      tls: {
        rejectUnauthorized: opts.verifyCertificate,
        ...(servername ? { servername } : {}),
        ...(this.#ca.length > 0 ? { ca: [...rootCertificates, ...this.#ca] } : {}),
      },
    };
  }
}
