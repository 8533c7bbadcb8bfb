import { FakeDns, type FakeRecords } from './fake-dns.js';
import { sparePort } from './ports.js';
import { SinkServer, type SinkOptions } from './sink-server.js';

/**
 * A small Internet for outbound tests: named mail hosts that are local sink
 * servers (all on 127.0.0.1, each on its own port), domains whose MX records
 * point at them, and the relay-mx options that reach them there
 * (`allowLocalDestinations`, `exchangePorts`).
 *
 *   const world = new MxWorld();
 *   const mx1 = await world.host('mx1.remote.test');
 *   world.domain('remote.test', [['mx1.remote.test', 10]]);
 *   startTestServer({ plugins: [..., { name: 'relay-mx', options: world.relayMxOptions() }] }, { dns: world.dns });
 */
export class MxWorld {
  readonly dns = new FakeDns();
  /** Host name → port, as relay-mx's `exchangePorts`. */
  readonly ports: Record<string, number> = {};
  readonly #sinks: SinkServer[] = [];

  /** A mail host answering as `options` script it, with an A record at 127.0.0.1. */
  async host(name: string, options: SinkOptions = {}): Promise<SinkServer> {
    const sink = await SinkServer.start(options);
    this.#sinks.push(sink);
    this.ports[name] = sink.port;
    this.dns.set(name, { A: ['127.0.0.1'] });
    return sink;
  }

  /** A host name whose address refuses connections (nothing listens on its port). */
  async deadHost(name: string): Promise<void> {
    this.ports[name] = await sparePort();
    this.dns.set(name, { A: ['127.0.0.1'] });
  }

  /** MX records for `domain`: `[host, priority]` pairs, in the order DNS answers them. */
  domain(domain: string, exchanges: readonly (readonly [string, number])[], extra: FakeRecords = {}): this {
    this.dns.set(domain, { MX: exchanges.map(([exchange, priority]) => ({ exchange, priority })), ...extra });
    return this;
  }

  relayMxOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { allowLocalDestinations: true, exchangePorts: { ...this.ports }, ...extra };
  }

  async close(): Promise<void> {
    await Promise.all(this.#sinks.map((sink) => sink.close().catch(() => undefined)));
  }
}
