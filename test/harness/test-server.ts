import 'reflect-metadata';
import type { DependencyContainer } from 'tsyringe';
import type { Clock } from '../../core/clock.js';
import { configFromObject } from '../../core/config/load.js';
import type { DnsResolver } from '../../core/dns/resolver.js';
import { TOKENS } from '../../core/di/tokens.js';
import { Petrel } from '../../core/petrel.js';
import { FakeDns } from './fake-dns.js';
import { LogCapture } from './log-capture.js';
import { SmtpTestClient } from './smtp-client.js';
import { tempDir } from './temp-dir.js';

export interface TestServerOptions {
  /** Directory relative plugin paths and files resolve from; a fresh temp dir when omitted. */
  readonly baseDir?: string;
  /** A FakeDns when omitted; `'configured'` for the real resolver the config's `dns` settings describe. */
  readonly dns?: DnsResolver | 'configured';
  readonly clock?: Clock;
  readonly override?: (container: DependencyContainer) => void;
}

export interface TestServer {
  readonly petrel: Petrel;
  readonly logs: LogCapture;
  readonly dns: DnsResolver;
  readonly dataDir: string;
  /** The port a listener got (listeners are bound to port 0 unless the config says otherwise). */
  port(listener?: string): number;
  /** A client that has read the greeting and sent EHLO. */
  client(listener?: string, options?: Parameters<typeof SmtpTestClient.ready>[1]): Promise<SmtpTestClient>;
  stop(): Promise<void>;
}

type ConfigObject = Record<string, unknown>;

/**
 * Boots a real Petrel from a config object, on 127.0.0.1 and port 0, with its
 * state in a temp dir, logs captured and DNS from a table. The defaults are
 * the smallest useful server: one plain listener `mx`, local domain
 * `localhost`, relay-access and queue-journal (the default queue). Anything in `config` replaces
 * the default of that top-level key.
 *
 *   const server = await startTestServer({ plugins: [...] });
 *   const client = await server.client();
 *   await client.command('MAIL FROM:<a@example.org>');
 */
export async function startTestServer(config: ConfigObject = {}, options: TestServerOptions = {}): Promise<TestServer> {
  const temp = tempDir();
  const baseDir = options.baseDir ?? temp.path;
  const defaults: ConfigObject = {
    server: { hostname: 'mx.petrel.test', dataDir: temp.path, localDomains: ['localhost'], shutdownTimeout: '2s' },
    listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
    dns: { reverseLookup: false },
    plugins: [{ name: 'relay-access' }, { name: 'queue-journal' }],
  };
  const merged: ConfigObject = { ...defaults, ...config };
  if (config.server) merged.server = { ...(defaults.server as ConfigObject), ...(config.server as ConfigObject) };
  const logs = new LogCapture();
  const injected = options.dns === 'configured' ? undefined : (options.dns ?? new FakeDns());
  const petrel = await Petrel.start({
    config: configFromObject(merged, baseDir),
    logger: logs.logger,
    dns: injected,
    clock: options.clock,
    override: options.override,
  }).catch((error: unknown) => {
    // Tests that expect a failed start must not leave the temp dir behind.
    temp.remove();
    throw error;
  });
  const port = (listener = 'mx') => petrel.address(listener).port;
  return {
    petrel,
    logs,
    dns: petrel.base.resolve<DnsResolver>(TOKENS.Dns),
    dataDir: (merged.server as { dataDir: string }).dataDir,
    port,
    client: (listener = 'mx', clientOptions) => SmtpTestClient.ready(port(listener), clientOptions),
    stop: async () => {
      await petrel.stop();
      temp.remove();
    },
  };
}
