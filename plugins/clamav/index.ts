import { type HookRegistrar, type IncomingMessage, inject, injectable, type Paths, type PluginMeta, port, reject, ScanFailure, type ScanOutcome, scanMessage, scanOptions, TOKENS, z } from 'petrel';
import { type ClamdAddress, scanWithClamd } from './clamd-client.js';

export const options = z
  .strictObject({
    socket: z.string().min(1).optional().describe("clamd's unix socket (its LocalSocket, Debian: /run/clamav/clamd.ctl), relative to the config file"),
    host: z.string().min(1).optional().describe("or clamd's TCP address or host name (its TCPAddr); default 127.0.0.1 when no socket is given"),
    port: port().default(3310).describe("clamd's TCP port (its TCPSocket)"),
    // clamd's own StreamMaxLength default: what it would refuse anyway is not sent.
    ...scanOptions({ maxSize: '25MiB' }),
  })
  .refine((opts) => opts.socket === undefined || opts.host === undefined, { message: 'give either socket or host, not both', path: ['socket'] });

type Options = z.output<typeof options>;

/**
 * Scans each message with clamd (ClamAV's daemon), once, from the `message`
 * hook: the message is streamed with INSTREAM from the spool, and a
 * signature found refuses it with 554 5.7.1 naming the signature (nothing is
 * queued). clamd refusing the message as larger than its StreamMaxLength is
 * a failure like any other: `failMode` decides (core/filter).
 */
@injectable()
export default class ClamAv {
  static readonly meta: PluginMeta = {
    name: 'clamav',
    version: '1.0.0',
    description: 'scans messages with ClamAV (clamd INSTREAM) and refuses infected ones with 554 5.7.1',
  };
  static readonly options = options;

  readonly #address: ClamdAddress;

  constructor(
    @inject(TOKENS.PluginOptions) private readonly opts: Options,
    @inject(TOKENS.Paths) paths: Paths,
  ) {
    this.#address = opts.socket !== undefined ? { socket: paths.resolve(opts.socket) } : { host: opts.host ?? '127.0.0.1', port: opts.port };
  }

  register(hooks: HookRegistrar): void {
    hooks.on('message', (session, transaction, message, signal) =>
      scanMessage({ scanner: ClamAv.meta.name, options: this.opts, session, transaction, message, signal }, (abort) => this.scan(message, abort)),
    );
  }

  async scan(message: IncomingMessage, signal: AbortSignal): Promise<ScanOutcome> {
    const answer = await scanWithClamd(this.#address, message.stream(), signal);
    switch (answer.kind) {
      case 'infected':
        return { verdict: { verdict: 'virus', signature: answer.signature }, result: reject(554, '5.7.1', `Message refused: virus found (${answer.signature})`) };
      case 'too-large':
        throw new ScanFailure('clamd refused the message as larger than its StreamMaxLength (set maxSize below it)');
      case 'clean':
        return { verdict: { verdict: 'clean' } };
    }
  }
}
