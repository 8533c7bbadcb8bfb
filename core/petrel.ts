import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { systemClock, type Clock } from './clock.js';
import { ConfigError } from './config/config-error.js';
import type { LoadedConfig } from './config/load.js';
import type { PetrelConfig } from './config/schema.js';
import { TOKENS } from './di/tokens.js';
import { ReverseLookup } from './dns/reverse-lookup.js';
import { configuredResolver, type DnsResolver } from './dns/resolver.js';
import { AdminServer } from './admin/admin-server.js';
import { ControlServer } from './control/control-server.js';
import type { ControlRequest } from './control/control-protocol.js';
import type { PetrelError } from './errors.js';
import { QueueOperations } from './control/queue-operations.js';
import { Bouncer } from './delivery/bouncer.js';
import type { OutboundHooks } from './delivery/outbound-hooks.js';
import { RetrySchedule } from './delivery/retry-schedule.js';
import { DeliveryScheduler } from './delivery/scheduler.js';
import { Generation } from './generation.js';
import { HistoryStore } from './history/history-store.js';
import { HookRegistry } from './hooks/registry.js';
import { createLogger, type Logger } from './log/logger.js';
import { Metrics } from './metrics/metrics.js';
import { makePaths, type Paths, type WorkerSlot } from './paths.js';
import { pluginInStack } from './plugins/plugin-blame.js';
import { PluginHost, type PreviousPlugins } from './plugins/plugin-host.js';
import type { ServerIdentity } from './privileges/server-identity.js';
import type { Queue } from './queue/contract.js';
import { connectRedis } from './redis/redis-connect.js';
import type { RedisClient } from './redis/redis-client.js';
import { SmtpListener } from './smtp/smtp-listener.js';
import { loadTlsMaterial, type TlsMaterial } from './smtp/tls-material.js';
import { Spool } from './spool/spool.js';
import { ExpiringStores } from './util/expiring-store.js';
import { TraceHub } from './trace/trace-hub.js';
import { restartOnlyChanges, sameCoreConfig } from './reload/restart-only-changes.js';
import { MaildropPickup } from './sendmail/pickup.js';
import type { QueueOperator } from './control/queue-operations.js';
import { ClusterQueueOperations } from './workers/cluster-queue-operations.js';
import type { WorkerChannel } from './workers/worker-channel.js';
import { SharedExpiringStore } from './workers/shared-expiring-store.js';
import type { WorkerLaunch, WorkerRequest } from './workers/worker-protocol.js';
import type { WorkerMetrics } from './metrics/metrics.js';

export interface PetrelOptions {
  readonly config: LoadedConfig;
  /** Defaults to a pino logger at the configured level on stdout. */
  readonly logger?: Logger;
  /** Defaults to the resolver the `dns` settings describe. Tests inject test/harness/fake-dns.ts. */
  readonly dns?: DnsResolver;
  readonly clock?: Clock;
  /** Defaults to a fresh registry with Node's process metrics. */
  readonly metrics?: Metrics;
  /**
   * Replace a service before plugins are built, keeping everything else real
   * (like NestJS's overrideProvider): `c => c.registerInstance(TOKENS.Dns, fake)`.
   */
  readonly override?: (container: DependencyContainer) => void;
  /** Where `reload()` re-reads the config from (SIGHUP, `petrel reload`). */
  readonly reloadConfig?: () => Promise<LoadedConfig>;
  /**
   * Who the process serves mail as (`petrel start`: server.user): the data
   * directory is checked for that owner, and a process started as root
   * switches to it once the ports are bound, before plugins start. Left out
   * (tests, embedding), nothing is checked and the process stays who it is.
   */
  readonly identity?: ServerIdentity;
  /**
   * Set when this process is one of `server.workers` (core/workers/): it
   * binds its listeners with SO_REUSEPORT beside the other workers, keeps
   * its own share of the queue (Paths.partition), and worker 0 alone serves
   * the control socket, the admin listener and the maildrop, answering for
   * the whole server through the channel.
   */
  readonly worker?: { readonly launch: WorkerLaunch; readonly channel: WorkerChannel };
  /** For `petrel queue ...` without a running server: open this worker's share of the queue (Paths.partition) instead of worker 0's. */
  readonly share?: WorkerSlot;
}

/**
 * A running Petrel: the core services, the current generation of plugins
 * (see generation.ts), the listeners and the delivery scheduler. `start`
 * brings it up in the order the lifecycle promises (plugins constructed,
 * registered and started before any connection is served; ports are bound
 * earlier, while the process may still be root), `reload` swaps in a new
 * configuration without dropping a connection, `stop` takes it down
 * gracefully.
 */
export class Petrel {
  readonly listeners: SmtpListener[] = [];
  readonly paths: Paths;
  readonly metrics: Metrics;
  /** Live SMTP traces, inbound and outbound (`petrel trace`, the console). */
  readonly trace = new TraceHub();
  /** Each message's history and the refusals (`petrel queue show`, `petrel why`); undefined with history.enabled false. */
  readonly history: HistoryStore | undefined;
  #generation: Generation;
  #redis: RedisClient | undefined;
  #stopping: Promise<void> | undefined;
  #reloading: Promise<void> | undefined;
  #scheduler: DeliveryScheduler | undefined;
  #bouncer: Bouncer | undefined;
  #control: ControlServer | undefined;
  #admin: AdminServer | undefined;
  #pickup: MaildropPickup | undefined;
  /** Generations replaced by a reload whose sessions have not all ended. */
  readonly #retiring = new Set<Generation>();

  private constructor(
    /** Core services shared by every generation: clock, DNS, spool, Redis, metrics, the queue. */
    readonly base: DependencyContainer,
    readonly logger: Logger,
    private readonly options: PetrelOptions,
    generation: Generation,
    metrics: Metrics,
  ) {
    this.#generation = generation;
    this.metrics = metrics;
    this.paths = base.resolve<Paths>(TOKENS.Paths);
    const { history, delivery } = generation.config;
    this.history = history.enabled
      ? new HistoryStore(this.paths.dataDir, { ...history, expireAfter: delivery.expireAfter }, base.resolve<Clock>(TOKENS.Clock), logger.child({ component: 'history' }))
      : undefined;
  }

  /** Builds the container and constructs and registers the plugins, without starting anything. */
  static async build(options: PetrelOptions): Promise<Petrel> {
    const { config } = options.config;
    const logger = options.logger ?? createLogger({ level: config.logging.level, format: config.logging.format });
    const metrics = options.metrics ?? new Metrics({ destinationLabels: config.admin?.metricsDestinations });
    const base = globalContainer.createChildContainer();
    const slot = options.worker?.launch ?? options.share;
    const paths = makePaths(options.config.baseDir, config.server.dataDir, slot ? { index: slot.index, count: slot.count } : undefined);
    base.registerInstance(TOKENS.Paths, paths);
    base.registerInstance(TOKENS.Clock, options.clock ?? systemClock);
    base.registerInstance(TOKENS.Dns, options.dns ?? configuredResolver(config.dns));
    base.registerInstance(TOKENS.Spool, new Spool(paths.dataDir, undefined, slot?.index ?? 0));
    base.registerInstance(TOKENS.Logger, logger);
    base.registerInstance(TOKENS.Metrics, metrics);
    let redis: RedisClient | undefined;
    if (config.redis) {
      // ioredis is loaded only when Redis is configured (it is ~25 MiB of memory otherwise unused).
      const { createRedisClient } = await import('./redis/redis-client.js');
      redis = createRedisClient(config.redis);
      redis.on('error', (error: Error) => {
        metrics.redisErrors.inc();
        logger.warn({ err: error }, `redis: ${error.message}`);
      });
      base.registerInstance(TOKENS.Redis, redis);
    }
    options.override?.(base);
    // After the overrides, so the stores count by the clock and Redis the plugins see.
    if (!base.isRegistered(TOKENS.ExpiringStores)) {
      const sharedRedis = base.isRegistered(TOKENS.Redis) ? base.resolve<RedisClient>(TOKENS.Redis) : undefined;
      const worker = options.worker;
      const sharedMemory = worker ? (namespace: string) => new SharedExpiringStore(worker.channel, namespace) : undefined;
      base.registerInstance(TOKENS.ExpiringStores, new ExpiringStores(base.resolve<Clock>(TOKENS.Clock), sharedRedis, sharedMemory));
    }
    const generation = await Petrel.#generationFor(options.config, base, logger, metrics);
    const petrel = new Petrel(base, logger, options, generation, metrics);
    petrel.#redis = redis;
    return petrel;
  }

  /** Builds, starts plugins, opens listeners. On any failure, what was started is closed again. */
  static async start(options: PetrelOptions): Promise<Petrel> {
    const petrel = await Petrel.build(options);
    await petrel.start();
    return petrel;
  }

  /**
   * Starts what build() made: Redis, plugins, the control socket, listeners,
   * delivery, the admin listener. On any failure what was started is closed
   * again and the error says what failed (a listener's address in use,
   * Redis unreachable, a plugin that failed or hung in start()).
   */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** A generation's own container (with its Config) under the shared one, and its plugins loaded. */
  static async #generationFor(loaded: LoadedConfig, base: DependencyContainer, logger: Logger, metrics: Metrics, previous?: PreviousPlugins): Promise<Generation> {
    const container = base.createChildContainer();
    container.registerInstance(TOKENS.Config, loaded.config);
    const registry = new HookRegistry((hook, plugin, seconds, failed) => {
      metrics.hookDuration.observe({ hook, plugin }, seconds);
      if (failed) metrics.hookFailures.inc({ hook, plugin });
    });
    const plugins = new PluginHost(container, registry, logger);
    await plugins.load(loaded, previous);
    return new Generation(loaded, container, registry, plugins, logger);
  }

  /** The configuration in force (for new sessions). */
  get config(): PetrelConfig {
    return this.#generation.config;
  }

  get plugins(): PluginHost {
    return this.#generation.plugins;
  }

  /** The root container of the current generation (core services and its Config). */
  get container(): DependencyContainer {
    return this.#generation.container;
  }

  get queue(): Queue {
    return this.plugins.queue;
  }

  /** The delivery scheduler, when this node delivers (delivery.enabled and some plugin handles `deliver`). */
  get scheduler(): DeliveryScheduler | undefined {
    return this.#scheduler;
  }

  /** Runs the outbound hooks (route, transform, deliver, notifications) of the current plugins. */
  get outboundHooks(): OutboundHooks {
    return this.#generation.outbound;
  }

  /** Queues delivery status notifications (used by the scheduler and by `petrel queue bounce`). */
  get bouncer(): Bouncer {
    if (!this.#bouncer) {
      const clock = this.base.resolve<Clock>(TOKENS.Clock);
      const schedule = new RetrySchedule(this.config.delivery);
      this.#bouncer = new Bouncer(
        () => this.plugins.queue,
        this.base.resolve<Spool>(TOKENS.Spool),
        clock,
        { hostname: this.config.server.hostname, bounces: this.config.delivery.bounces, expiresAt: (m) => schedule.expiresAt(m.receivedAt) },
        this.logger.child({ component: 'bounces' }),
      );
    }
    return this.#bouncer;
  }

  /** What operators can do to the queue (`petrel queue ...`, the admin API). */
  queueOperations(): QueueOperations {
    return new QueueOperations({
      queue: this.plugins.queue,
      bouncer: this.bouncer,
      hooks: this.outboundHooks,
      clock: this.base.resolve<Clock>(TOKENS.Clock),
      leaseMs: this.config.delivery.leaseTime,
      history: this.history,
    });
  }

  /**
   * Starts only what the queue needs (Redis, the queue plugin): for
   * `petrel queue ...` when no server is running. `stop()` closes it again.
   */
  async openQueue(): Promise<Queue> {
    if (this.#redis) await connectRedis(this.#redis, this.config.redis);
    await this.plugins.start((plugin) => plugin.instance === (this.plugins.queue as unknown));
    return this.plugins.queue;
  }

  /**
   * The plugin whose code an error's stack runs through first, if any: for
   * log lines about errors nobody caught. Plugins of generations replaced by
   * a reload still count while their sessions finish.
   */
  pluginBlamedFor(error: unknown): string | undefined {
    const plugins = [this.#generation, ...this.#retiring].flatMap((generation) => generation.plugins.plugins);
    return pluginInStack(error, plugins);
  }

  /** The bound address of a listener (useful with port 0). */
  address(listenerName: string): AddressInfo {
    const listener = this.listeners.find((l) => l.config.name === listenerName);
    if (!listener) throw new Error(`no listener named ${listenerName}`);
    return listener.address();
  }

  /**
   * Re-reads the configuration (SIGHUP, `petrel reload`) and switches to it
   * when it is valid: new sessions use the new plugins and settings, open
   * sessions finish on the old ones, and no connection is dropped. Plugins
   * whose config entry did not change keep running with their state; TLS
   * certificates are read again. A config that does not validate, or that
   * changes what only a restart can (listeners, data directory, Redis, the
   * queue plugin, DNS, delivery), is refused and the running one stays;
   * the returned promise rejects with the reason.
   */
  reload(next?: LoadedConfig): Promise<string[]> {
    const run = async () => {
      if (this.#stopping) throw new Error('shutting down: reload refused');
      try {
        const loaded = next ?? (await this.options.reloadConfig?.());
        if (!loaded) throw new Error('no config file to reload from');
        await this.#reload(loaded);
      } catch (error) {
        throw this.#explainUnreadable(error);
      }
      return this.plugins.plugins.map((p) => `${p.name}@${p.version}`);
    };
    // One reload at a time: a second SIGHUP waits for the first.
    const attempt = (this.#reloading ?? Promise.resolve()).then(run);
    this.#reloading = attempt.then(
      () => undefined,
      () => undefined,
    );
    return attempt;
  }

  /**
   * After switching users, a reload reads the config and certificates as that
   * user: a file only root can read (a private key in /etc/letsencrypt) was
   * fine at start and is refused now. Say why, rather than just EACCES.
   */
  #explainUnreadable(error: unknown): unknown {
    const identity = this.options.identity;
    let cause: unknown = error;
    while (cause instanceof Error && (cause as NodeJS.ErrnoException).code !== 'EACCES') cause = cause.cause;
    if (!identity?.mustSwitch || !(cause instanceof Error) || !(error instanceof Error)) return error;
    error.message += ` (Petrel switched to user ${identity.user.name} at start, so a reload reads files as ${identity.user.name}: ` +
      `make them readable by it, e.g. through a group such as ssl-cert, or restart to read them as root)`;
    return error;
  }

  async #reload(loaded: LoadedConfig): Promise<void> {
    const old = this.#generation;
    const blocked = restartOnlyChanges(old.config, loaded.config);
    if (blocked.length > 0) {
      const message = (key: string) =>
        key === 'listeners' && this.options.identity?.mustSwitch
          ? `changing this needs a restart: Petrel runs as ${this.options.identity.user.name} now and cannot bind ports again as root; the running configuration stays`
          : 'changing this needs a restart; the running configuration stays';
      throw new ConfigError(blocked.map((key) => ({ file: loaded.locator.file, line: 0, column: 0, path: key, message: message(key) })));
    }
    const tls = await this.#tlsMaterial(loaded.config);
    // Plugins read the config when they are built, so they keep their instances only when nothing but the plugin list changed.
    const keep = sameCoreConfig(old.config, loaded.config) ? 'unchanged' : 'queue';
    const generation = await Petrel.#generationFor(loaded, this.base, this.logger, this.metrics, { host: old.plugins, keep });
    try {
      await generation.plugins.start();
    } catch (error) {
      await generation.plugins.close();
      throw error;
    }
    generation.plugins.takeOver(old.plugins);
    this.#generation = generation;
    this.logger.level = loaded.config.logging.level;
    for (const listener of this.listeners) listener.apply(loaded.config, tls);
    this.#scheduler?.useHooks(generation.outbound);
    this.#retiring.add(old);
    old.retire(() => {
      this.#retiring.delete(old);
      void old.plugins.close();
    });
    this.logger.info(
      { plugins: generation.plugins.plugins.map((p) => p.name), openSessionsOnOld: old.sessions, deliveriesOnOld: old.deliveries },
      'configuration reloaded',
    );
  }

  /**
   * The order matters: what needs root comes first (the data directory made
   * or checked, certificates read, every port bound), then the process becomes
   * server.user, and only then do plugins start and connections get served;
   * connections that arrive in between wait unread (ConnectionGate).
   */
  async #start(): Promise<void> {
    const identity = this.options.identity;
    await identity?.prepareDataDir(this.paths.dataDir);
    const tls = await this.#tlsMaterial(this.config);
    const spool = this.base.resolve<Spool>(TOKENS.Spool);
    const dns = this.base.resolve<DnsResolver>(TOKENS.Dns);
    const clock = this.base.resolve<Clock>(TOKENS.Clock);
    const reverseLookup = this.config.dns.reverseLookup || this.config.listeners.some((l) => l.reverseDns)
      ? new ReverseLookup(dns, clock, this.config.dns.cacheTtl)
      : undefined;
    for (const listenerConfig of this.config.listeners) {
      const listener = new SmtpListener(listenerConfig, this.config, {
        pipeline: () => this.#generation,
        metrics: this.metrics,
        spool,
        queue: () => this.plugins.queue,
        logger: this.logger,
        clock,
        tls,
        reverseLookup,
        trace: this.trace,
        history: this.history,
      });
      const launch = this.options.worker?.launch;
      await listener.listen(launch ? { port: launch.ports[listenerConfig.name] ?? listenerConfig.port, reusePort: true } : undefined);
      this.listeners.push(listener);
    }
    if (this.#servesWholeServer) await this.#bindAdmin();
    if (identity?.mustSwitch) {
      identity.switchUser();
      this.logger.info({ user: identity.user.name, uid: identity.user.uid, gid: identity.group.gid }, `switched to user ${identity.describe()}`);
    }
    await spool.init();
    if (this.#redis) await connectRedis(this.#redis, this.config.redis);
    if (!this.#generation.registry.has('rcpt')) {
      this.logger.warn('no plugin handles the rcpt hook: every recipient will be refused (enable relay-access)');
    }
    await this.plugins.start();
    await this.history?.prune().catch((error: Error) => this.logger.warn({ err: error }, `history: ${error.message}`));
    if (this.#servesWholeServer) {
      await this.#openControlSocket();
      await this.#startPickup(spool, clock);
    }
    for (const listener of this.listeners) listener.open();
    this.#admin?.open();
    const worker = this.options.worker;
    if (worker) {
      worker.channel.serve((request) => this.#answerWorker(request));
      worker.channel.shareTraces(this.trace);
      this.logger.info({ listeners: this.listeners.map((l) => l.config.name), worker: worker.launch.index }, `worker ${worker.launch.index} accepting connections`);
      worker.channel.ready(Object.fromEntries(this.listeners.map((l) => [l.config.name, l.address().port])));
    } else {
      this.logger.info({ listeners: this.listeners.map((l) => l.config.name) }, 'accepting connections');
    }
    this.#startDelivery(clock);
  }

  /** A single process, or worker 0 of several: it serves the control socket, the admin listener and the maildrop. */
  get #servesWholeServer(): boolean {
    return (this.options.worker?.launch.index ?? 0) === 0;
  }

  /** What the control socket and the admin API operate: this process's queue, or every worker's. */
  #serverQueueOperations(): QueueOperator {
    const worker = this.options.worker;
    if (!worker) return this.queueOperations();
    return new ClusterQueueOperations((request) => worker.channel.all(request), this.queueOperations());
  }

  /** A request from the primary about this worker's share (see core/workers/worker-protocol.ts). */
  async #answerWorker(request: WorkerRequest): Promise<unknown> {
    switch (request.op) {
      case 'queue':
        return this.queueOperations().execute(request.request);
      case 'raw': {
        const stream = await this.queueOperations().raw(request.id);
        if (!stream) return null;
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks).toString('base64');
      }
      case 'reload':
        return { plugins: await this.reload() };
      case 'metrics':
        return this.metrics.registry.getMetricsAsJSON();
      case 'readiness': {
        const results: Record<string, string> = {};
        for (const [name, check] of Object.entries(this.#localReadiness())) {
          results[name] = await check.then(
            () => 'ok',
            (error: unknown) => `failing: ${(error as Error).message}`,
          );
        }
        return results;
      }
    }
  }

  /** The checks behind /ready for this process. */
  #localReadiness(): Record<string, Promise<unknown>> {
    return {
      queue: this.queue.ready?.() ?? this.queue.counts?.() ?? this.queue.stats(),
      spool: this.base.resolve<Spool>(TOKENS.Spool).ready(),
      ...(this.#redis ? { redis: this.#redis.ping() } : {}),
    };
  }

  /** The checks behind /ready for the whole server: with workers, each check fails if it fails in any worker. */
  #readiness(): Record<string, Promise<unknown>> {
    const worker = this.options.worker;
    if (!worker) return this.#localReadiness();
    const answers = worker.channel.all({ op: 'readiness' });
    const checkOf = async (name: string) => {
      const problems: string[] = [];
      for (const answer of await answers) {
        if (!answer.ok) problems.push(`worker ${answer.worker}: ${answer.error}`);
        else {
          const result = (answer.result as Record<string, string>)[name];
          if (result !== undefined && result !== 'ok') problems.push(`worker ${answer.worker}: ${result}`);
        }
      }
      if (problems.length > 0) throw new Error(problems.join('; '));
    };
    return Object.fromEntries(Object.keys(this.#localReadiness()).map((name) => [name, checkOf(name)]));
  }

  /** A reload of the whole server: with workers, every worker reloads; any refusal is the answer. */
  async #reloadServer(): Promise<{ plugins: string[] }> {
    const worker = this.options.worker;
    if (!worker) return { plugins: await this.reload() };
    const answers = await worker.channel.all({ op: 'reload' });
    const refused = answers.filter((answer) => !answer.ok);
    if (refused.length > 0) throw new Error(refused.map((answer) => `worker ${answer.worker}: ${answer.error}`).join('; '));
    return answers[0].result as { plugins: string[] };
  }

  /** The admin listener's bound address, when `admin:` is configured. */
  get adminAddress(): AddressInfo | undefined {
    return this.#admin?.address();
  }

  async #bindAdmin(): Promise<void> {
    const settings = this.config.admin;
    if (!settings) return;
    const worker = this.options.worker;
    if (worker) {
      this.metrics.aggregateWorkers(async () =>
        (await worker.channel.all({ op: 'metrics' })).map((answer) => {
          if (!answer.ok) throw new Error(`worker ${answer.worker}: ${answer.error}`);
          return answer.result as WorkerMetrics;
        }),
      );
    }
    const admin = new AdminServer({ token: settings.token, metricsNeedToken: settings.metricsAuth === 'token' }, {
      config: () => this.config,
      metrics: this.metrics,
      queueOperations: () => this.#serverQueueOperations(),
      plugins: () => this.plugins.plugins,
      readiness: () => this.#readiness(),
      reload: () => this.#reloadServer(),
      log: this.logger.child({ component: 'admin' }),
      trace: this.trace,
      history: this.history,
      console: settings.console,
    });
    await admin.listen(settings.port, settings.host);
    this.#admin = admin;
  }

  /**
   * The socket `petrel queue` and `petrel reload` talk to. Another server
   * answering on it stops the start (two servers on one data directory); any
   * other failure (a path too long for a Unix socket, permissions) only costs
   * the operator commands, not mail service, so it is a warning.
   */
  async #openControlSocket(): Promise<void> {
    const control = new ControlServer(this.paths.dataDir, (request: ControlRequest) => this.#answerControl(request), this.logger.child({ component: 'control' }));
    try {
      await control.listen();
      this.#control = control;
    } catch (error) {
      if ((error as PetrelError).code === 'PETREL_CONTROL_IN_USE') throw error;
      this.logger.warn({ err: error, path: control.path }, `no control socket (${(error as Error).message}): petrel queue commands cannot reach this server`);
    }
  }

  /**
   * Queues what `petrel sendmail` leaves in the maildrop (see
   * sendmail/pickup.ts). Like the control socket, a maildrop that cannot be
   * made costs local programs their mail, not the server its service.
   */
  async #startPickup(spool: Spool, clock: Clock): Promise<void> {
    const pickup = new MaildropPickup({
      dataDir: this.paths.dataDir,
      spool,
      queue: () => this.plugins.queue,
      config: () => this.config,
      clock,
      metrics: this.metrics,
      bouncer: () => this.bouncer,
      log: this.logger.child({ component: 'pickup' }),
    });
    try {
      await pickup.start();
      this.#pickup = pickup;
    } catch (error) {
      this.logger.warn({ err: error }, `no maildrop pickup (${(error as Error).message}): mail from petrel sendmail waits until this is fixed`);
    }
  }

  async #answerControl(request: ControlRequest): Promise<unknown> {
    if (request.op === 'reload') return this.#reloadServer();
    return this.#serverQueueOperations().execute(request);
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
      metrics: this.metrics,
      redis: this.#redis,
      trace: this.trace,
      history: this.history,
    });
    this.#scheduler.start();
  }

  async #tlsMaterial(config: PetrelConfig): Promise<TlsMaterial | undefined> {
    const needed = config.listeners.some((l) => l.tls !== 'none');
    if (!needed || !config.tls) return undefined;
    return loadTlsMaterial(config.tls, this.paths, config.server.hostname);
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
    await this.#reloading;
    await Promise.all([
      ...this.listeners.map((listener) => listener.close(deadline)),
      this.#scheduler?.stop(deadline),
    ]);
    await this.#pickup?.close();
    await this.#control?.close();
    await this.#admin?.close();
    for (const old of this.#retiring) await old.plugins.close();
    await this.plugins.close();
    await this.history?.close();
    if (this.#redis) this.#redis.disconnect();
    this.logger.info('stopped');
    this.logger.flush();
  }
}
