import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { systemClock, type Clock } from './clock.js';
import type { LoadedConfig } from './config/load.js';
import type { PetrelConfig } from './config/schema.js';
import { TOKENS } from './di/tokens.js';
import { ReverseLookup } from './dns/reverse-lookup.js';
import { systemResolver, type DnsResolver } from './dns/resolver.js';
import { ControlServer } from './control/control-server.js';
import type { PetrelError } from './errors.js';
import { QueueOperations } from './control/queue-operations.js';
import { Bouncer } from './delivery/bouncer.js';
import { OutboundHooks } from './delivery/outbound-hooks.js';
import { RetrySchedule } from './delivery/retry-schedule.js';
import { DeliveryScheduler } from './delivery/scheduler.js';
import { HookRegistry } from './hooks/registry.js';
import { HookRunner } from './hooks/runner.js';
import { createLogger, type Logger } from './log/logger.js';
import { makePaths, type Paths } from './paths.js';
import { PluginHost } from './plugins/plugin-host.js';
import type { Queue } from './queue/contract.js';
import { createRedisClient, type RedisClient } from './redis/redis-client.js';
import { SmtpListener } from './smtp/smtp-listener.js';
import { loadTlsMaterial, type TlsMaterial } from './smtp/tls-material.js';
import { Spool } from './spool/spool.js';

export interface PetrelOptions {
  readonly config: LoadedConfig;
  /** Defaults to a pino logger at the configured level on stdout. */
  readonly logger?: Logger;
  /** Defaults to the system resolver. Tests inject test/harness/fake-dns.ts. */
  readonly dns?: DnsResolver;
  readonly clock?: Clock;
  /**
   * Replace a service before plugins are built, keeping everything else real
   * (like NestJS's overrideProvider): `c => c.registerInstance(TOKENS.Dns, fake)`.
   */
  readonly override?: (container: DependencyContainer) => void;
}

/**
 * A running Petrel: the container, the plugins, the listeners. `Petrel.start`
 * brings it up in the order the lifecycle promises (plugins constructed,
 * registered and started before any port opens), `stop` takes it down
 * gracefully.
 */
export class Petrel {
  readonly listeners: SmtpListener[] = [];
  readonly config: PetrelConfig;
  readonly paths: Paths;
  #redis: RedisClient | undefined;
  #stopping: Promise<void> | undefined;
  #scheduler: DeliveryScheduler | undefined;
  #outbound: OutboundHooks | undefined;
  #bouncer: Bouncer | undefined;
  #control: ControlServer | undefined;

  private constructor(
    readonly container: DependencyContainer,
    private readonly registry: HookRegistry,
    readonly plugins: PluginHost,
    readonly logger: Logger,
    loaded: LoadedConfig,
  ) {
    this.config = loaded.config;
    this.paths = makePaths(loaded.baseDir, loaded.config.server.dataDir);
  }

  /** Builds the container and constructs and registers the plugins, without starting anything. */
  static async build(options: PetrelOptions): Promise<Petrel> {
    const { config } = options.config;
    const logger = options.logger ?? createLogger({ level: config.logging.level });
    const root = globalContainer.createChildContainer();
    const registry = new HookRegistry();
    const petrel = new Petrel(root, registry, new PluginHost(root, registry, logger), logger, options.config);
    const clock = options.clock ?? systemClock;
    root.registerInstance(TOKENS.Config, config);
    root.registerInstance(TOKENS.Paths, petrel.paths);
    root.registerInstance(TOKENS.Clock, clock);
    root.registerInstance(TOKENS.Dns, options.dns ?? systemResolver(config.dns.timeout));
    root.registerInstance(TOKENS.Spool, new Spool(petrel.paths.dataDir));
    root.registerInstance(TOKENS.Logger, logger);
    if (config.redis) {
      petrel.#redis = createRedisClient(config.redis);
      petrel.#redis.on('error', (error: Error) => logger.warn({ err: error }, `redis: ${error.message}`));
      root.registerInstance(TOKENS.Redis, petrel.#redis);
    }
    options.override?.(root);
    await petrel.plugins.load(options.config);
    return petrel;
  }

  /** Builds, starts plugins, opens listeners. On any failure, what was started is closed again. */
  static async start(options: PetrelOptions): Promise<Petrel> {
    const petrel = await Petrel.build(options);
    try {
      await petrel.#start();
    } catch (error) {
      await petrel.stop();
      throw error;
    }
    return petrel;
  }

  get queue(): Queue {
    return this.plugins.queue;
  }

  /** The delivery scheduler, when this node delivers (delivery.enabled and some plugin handles `deliver`). */
  get scheduler(): DeliveryScheduler | undefined {
    return this.#scheduler;
  }

  /** Runs the outbound hooks (route, transform, deliver, notifications) of the loaded plugins. */
  get outboundHooks(): OutboundHooks {
    this.#outbound ??= new OutboundHooks(this.registry, this.logger.child({ component: 'delivery' }));
    return this.#outbound;
  }

  /** Queues delivery status notifications (used by the scheduler and by `petrel queue bounce`). */
  get bouncer(): Bouncer {
    if (!this.#bouncer) {
      const clock = this.container.resolve<Clock>(TOKENS.Clock);
      const schedule = new RetrySchedule(this.config.delivery);
      this.#bouncer = new Bouncer(
        () => this.plugins.queue,
        this.container.resolve<Spool>(TOKENS.Spool),
        clock,
        { hostname: this.config.server.hostname, bounces: this.config.delivery.bounces, expiresAt: (m) => schedule.expiresAt(m.receivedAt) },
        this.logger.child({ component: 'bounces' }),
      );
    }
    return this.#bouncer;
  }

  /** What operators can do to the queue (`petrel queue ...`). */
  queueOperations(): QueueOperations {
    return new QueueOperations({
      queue: this.plugins.queue,
      bouncer: this.bouncer,
      hooks: this.outboundHooks,
      clock: this.container.resolve<Clock>(TOKENS.Clock),
      leaseMs: this.config.delivery.leaseTime,
    });
  }

  /**
   * Starts only what the queue needs (Redis, the queue plugin): for
   * `petrel queue ...` when no server is running. `stop()` closes it again.
   */
  async openQueue(): Promise<Queue> {
    if (this.#redis) await this.#redis.connect();
    await this.plugins.start((plugin) => plugin.instance === (this.plugins.queue as unknown));
    return this.plugins.queue;
  }

  /** The bound address of a listener (useful with port 0). */
  address(listenerName: string): AddressInfo {
    const listener = this.listeners.find((l) => l.config.name === listenerName);
    if (!listener) throw new Error(`no listener named ${listenerName}`);
    return listener.address();
  }

  async #start(): Promise<void> {
    const spool = this.container.resolve<Spool>(TOKENS.Spool);
    await spool.init();
    if (this.#redis) await this.#redis.connect();
    if (!this.registry.has('rcpt')) {
      this.logger.warn('no plugin handles the rcpt hook: every recipient will be refused (enable relay-access)');
    }
    await this.plugins.start();
    await this.#openControlSocket();
    const tls = await this.#tlsMaterial();
    const dns = this.container.resolve<DnsResolver>(TOKENS.Dns);
    const clock = this.container.resolve<Clock>(TOKENS.Clock);
    const reverseLookup = this.config.dns.reverseLookup || this.config.listeners.some((l) => l.reverseDns)
      ? new ReverseLookup(dns, clock, this.config.dns.cacheTtl)
      : undefined;
    const runner = new HookRunner(this.registry);
    for (const listenerConfig of this.config.listeners) {
      const listener = new SmtpListener(listenerConfig, this.config, {
        config: this.config,
        runner,
        spool,
        queue: () => this.plugins.queue,
        logger: this.logger,
        clock,
        tls,
        reverseLookup,
      });
      await listener.listen();
      this.listeners.push(listener);
    }
    this.#startDelivery(clock);
  }

  /**
   * The socket `petrel queue` talks to. Another server answering on it stops
   * the start (two servers on one data directory); any other failure (a path
   * too long for a Unix socket, permissions) only costs the operator commands,
   * not mail service, so it is a warning.
   */
  async #openControlSocket(): Promise<void> {
    const control = new ControlServer(this.paths.dataDir, this.queueOperations(), this.logger.child({ component: 'control' }));
    try {
      await control.listen();
      this.#control = control;
    } catch (error) {
      if ((error as PetrelError).code === 'PETREL_CONTROL_IN_USE') throw error;
      this.logger.warn({ err: error, path: control.path }, `no control socket (${(error as Error).message}): petrel queue commands cannot reach this server`);
    }
  }

  #startDelivery(clock: Clock): void {
    if (!this.config.delivery.enabled) {
      this.logger.info('delivery.enabled is false: this node accepts mail into the queue but does not deliver it');
      return;
    }
    if (!this.outboundHooks.hasDeliveryTarget) {
      this.logger.warn('no plugin handles the deliver hook: accepted mail stays in the queue (enable a delivery plugin such as relay-mx)');
      return;
    }
    this.#scheduler = new DeliveryScheduler({
      queue: this.plugins.queue,
      hooks: this.outboundHooks,
      bouncer: this.bouncer,
      config: this.config.delivery,
      clock,
      log: this.logger.child({ component: 'delivery' }),
    });
    this.#scheduler.start();
  }

  async #tlsMaterial(): Promise<TlsMaterial | undefined> {
    const needed = this.config.listeners.some((l) => l.tls !== 'none');
    if (!needed || !this.config.tls) return undefined;
    return loadTlsMaterial(this.config.tls, this.paths, this.config.server.hostname);
  }

  /**
   * Stops accepting, lets messages being received finish (up to
   * server.shutdownTimeout), then closes plugins in reverse order. Safe to
   * call more than once.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const deadline = Date.now() + this.config.server.shutdownTimeout;
    await Promise.all([
      ...this.listeners.map((listener) => listener.close(deadline)),
      this.#scheduler?.stop(deadline),
    ]);
    await this.#control?.close();
    await this.plugins.close();
    if (this.#redis) this.#redis.disconnect();
    this.logger.info('stopped');
    this.logger.flush();
  }
}
