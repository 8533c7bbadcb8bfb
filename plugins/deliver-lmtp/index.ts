import { connect, type Socket } from 'node:net';
import { type Delivery, duration, type HookRegistrar, inject, injectable, type Paths, type PetrelConfig, type PluginMeta, port, type RecipientResult, TOKENS, z } from 'petrel';
import { connectFailure, ConnectionPool, DeliveryFailure, poolOptions, sendPooled, type SmtpClientError, SmtpSession } from 'petrel/delivery';

export const options = z
  .strictObject({
    socket: z.string().min(1).optional().describe('Unix socket of the LMTP server (Dovecot: /var/run/dovecot/lmtp), relative to the config file'),
    host: z.string().min(1).optional().describe('or its host (an address or a name the operating system resolves)'),
    port: port().default(24),
    tls: z.enum(['none', 'starttls']).default('none').describe('STARTTLS required (for an LMTP server on another machine)'),
    verifyCertificate: z.boolean().default(true),
    lhloName: z.string().min(1).optional().describe('the name we give with LHLO; default server.hostname'),
    timeouts: z
      .strictObject({
        connect: duration().prefault('10s'),
        idle: duration().prefault('2m').describe('longest silence of the server, including its per-recipient replies after DATA'),
      })
      .prefault({}),
    pool: poolOptions({ maxConnections: 10, maxMessagesPerConnection: 100, idleTimeout: '5s' }),
  })
  .refine((opts) => (opts.socket === undefined) !== (opts.host === undefined), { message: 'give either socket or host' });

type Options = z.output<typeof options>;

/**
 * Hands mail to a mailbox server over LMTP (RFC 2033), the way Postfix
 * hands it to Dovecot: one transaction per group, and after DATA one reply
 * per recipient, each honoured on its own — one mailbox over quota (452)
 * is retried, one unknown (550) bounces, the rest are delivered. Over a
 * Unix socket or TCP; connections are pooled. See README.md.
 */
@injectable()
export default class DeliverLmtp {
  static readonly meta: PluginMeta = {
    name: 'deliver-lmtp',
    version: '1.0.0',
    description: 'delivers to a mailbox server over LMTP (Dovecot, Cyrus) with a result per recipient',
  };
  static readonly options = options;

  readonly #pool: ConnectionPool<SmtpSession>;
  readonly #socketPath: string | undefined;
  readonly #remoteMta: string;
  readonly #lhloName: string;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Config) config: PetrelConfig,
    @inject(TOKENS.Paths) paths: Paths,
  ) {
    this.#pool = new ConnectionPool<SmtpSession>(opts.pool);
    this.#socketPath = opts.socket === undefined ? undefined : paths.resolve(opts.socket);
    this.#remoteMta = this.#socketPath ?? `${opts.host}:${opts.port}`;
    this.#lhloName = opts.lhloName ?? config.server.hostname;
  }

  register(hooks: HookRegistrar): void {
    hooks.on('deliver', (delivery) => this.deliver(delivery));
  }

  close(): void {
    this.#pool.close();
  }

  deliver(delivery: Delivery): Promise<RecipientResult[]> {
    return sendPooled(this.#pool, this.#remoteMta, () => this.#open(delivery.signal), delivery);
  }

  async #open(signal: AbortSignal): Promise<SmtpSession> {
    const { opts } = this;
    const common = {
      lmtp: true,
      name: this.#lhloName,
      connectionTimeout: opts.timeouts.connect,
      socketTimeout: opts.timeouts.idle,
      requireTLS: opts.tls === 'starttls',
      ignoreTLS: opts.tls === 'none',
      tls: { rejectUnauthorized: opts.verifyCertificate },
    };
    try {
      if (this.#socketPath === undefined) return await SmtpSession.open({ ...common, host: opts.host, port: opts.port }, this.#remoteMta, signal);
      const socket = await unixSocket(this.#socketPath, opts.timeouts.connect);
      return await SmtpSession.open({ ...common, connection: socket }, this.#remoteMta, signal);
    } catch (error) {
      throw new DeliveryFailure(connectFailure(error as SmtpClientError, this.#remoteMta));
    }
  }
}

/** A connected Unix socket, or the error why not (ENOENT: the server is not running, EACCES: permissions). */
function unixSocket(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect to ${path} timed out`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
