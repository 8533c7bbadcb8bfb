import type { AddressInfo } from 'node:net';
import type { SMTPServerOptions } from 'smtp-server';
import { limitsOf, limitWarnings, type Limits } from '../config/limits-schema.js';
import type { ListenerConfig, PetrelConfig } from '../config/schema.js';
import type { ReverseLookup } from '../dns/reverse-lookup.js';
import { bunyanAdapter, isClientHangup, type Logger } from '../log/logger.js';
import type { ListenerInfo } from '../session.js';
import { ConnectionGate } from '../util/connection-gate.js';
import { describeDuration } from '../util/describe-duration.js';
import { listenFailure } from '../util/listen-failure.js';
import type { TraceHub } from '../trace/trace-hub.js';
import { isLoopback, NetworkList } from '../util/networks.js';
import { ClientShares } from './client-shares.js';
import { PetrelSmtpServer, type LimitEvent } from './petrel-smtp-server.js';
import { SmtpSessionHandlers, type SessionHandlerDeps } from './smtp-session-handlers.js';
import type { TlsMaterial } from './tls-material.js';

/** Commands no client gets: sendmail's joke commands. (VRFY and EXPN are answered without disclosing anything.) */
const ALWAYS_DISABLED = ['WIZ', 'SHELL', 'KILL'];

export interface ListenerDeps
  extends Omit<SessionHandlerDeps, 'listener' | 'insecureAuthAllowed' | 'xclientAllowed' | 'disabledCommands' | 'offerRequireTls'> {
  readonly tls?: TlsMaterial;
  readonly reverseLookup?: ReverseLookup;
  /** Live traces of this listener's sessions go here. */
  readonly trace?: TraceHub;
}

/** One configured listener: an smtp-server instance with Petrel's handlers. */
export class SmtpListener {
  readonly info: ListenerInfo;
  readonly #server: PetrelSmtpServer;
  readonly #handlers: SmtpSessionHandlers;
  readonly #gate: ConnectionGate;
  readonly #log: Logger;
  /** The limits new connections get; a reload changes them. */
  #limits: Limits;

  constructor(
    readonly config: ListenerConfig,
    serverConfig: PetrelConfig,
    deps: ListenerDeps,
  ) {
    this.info = {
      name: config.name,
      host: config.host,
      port: config.port,
      tls: config.tls === 'starttls-required' ? 'starttls' : config.tls,
      requireTls: config.tls === 'starttls-required',
      auth: config.auth,
      submission: config.submission,
    };
    this.#log = deps.logger.child({ listener: config.name });
    this.#limits = limitsOf(serverConfig, config.name);
    const xclientFrom = new NetworkList(config.xclient);
    this.#handlers = new SmtpSessionHandlers({
      ...deps,
      logger: this.#log,
      listener: this.info,
      insecureAuthAllowed: (address) => config.insecureAuth && isLoopback(address),
      xclientAllowed: (address) => xclientFrom.contains(address),
      disabledCommands: ALWAYS_DISABLED,
      offerRequireTls: config.offerRequireTls,
    });
    this.#server = new PetrelSmtpServer(this.#options(serverConfig, deps), {
      greetingDelayMs: config.greetingDelay,
      proxyFrom: new NetworkList(config.proxyProtocol),
      vrfy: config.vrfy,
      onHelo: this.#handlers.onHelo,
      onReset: this.#handlers.onReset,
      limits: () => this.#limits,
      shares: new ClientShares(),
      onLimit: (event) => this.#logLimit(event),
      trace: deps.trace ? { hub: deps.trace, listener: config.name } : undefined,
    });
    // smtp-server reads a socket itself once its parser (or TLS) is set up: hand sockets over paused.
    this.#gate = new ConnectionGate(this.#server.server, { resume: false });
    this.#server.on('error', (error: Error) => {
      // Before it listens, an error is a failed listen(), which reports it itself.
      if (!this.#server.server.listening) return;
      if (isClientHangup(error)) this.#log.debug({ err: error }, `client hung up: ${error.message}`);
      else this.#log.warn({ err: error }, `listener error: ${error.message}`);
    });
  }

  /**
   * A config reload: limits, our name and TLS certificates change for
   * sessions that start from now on (smtp-server reads these options per
   * session); listener addresses cannot change without a restart.
   */
  apply(serverConfig: PetrelConfig, tls: TlsMaterial | undefined): void {
    this.#limits = limitsOf(serverConfig, this.config.name);
    Object.assign(this.#server.options, reloadableOptions(serverConfig, this.#limits));
    if (tls) this.#server.updateSecureContext(tlsOptions(tls));
  }

  /**
   * Binds the port; rejects with PETREL_LISTEN_FAILED naming the listener (port
   * in use, permission denied). Connections that arrive are held, unread, until
   * `open()`: Petrel binds before it switches users and starts its plugins, and
   * serves only after (see ConnectionGate). `bind` is for workers
   * (core/workers/): the port the first worker got for port 0, shared.
   */
  listen(bind: { readonly port: number; readonly reusePort: boolean } = { port: this.config.port, reusePort: false }): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = this.#server.server;
      const onError = (error: Error) => reject(listenFailure(`listener ${this.config.name}`, this.config.host, bind.port, error));
      server.once('error', onError);
      // reusePort: each worker of server.workers binds its own socket to the port and the kernel spreads connections over them.
      server.listen({ port: bind.port, host: this.config.host, reusePort: bind.reusePort }, () => {
        server.off('error', onError);
        const address = server.address() as AddressInfo;
        this.#log.info({ host: address.address, port: address.port, tls: this.config.tls }, `listening on ${address.address}:${address.port}`);
        this.#warnAboutLimits();
        resolve(address);
      });
    });
  }

  /** Serves connections from now on, those held since `listen()` first. */
  open(): void {
    this.#gate.open();
  }

  /** The bound address; port 0 in the config becomes the real port here. */
  address(): AddressInfo {
    return this.#server.server.address() as AddressInfo;
  }

  /**
   * Graceful stop: no new connections; connections not in the middle of a
   * message get 421 now; a message being received may finish (and get its 250
   * once queued) until `deadline`, after which what is left is closed.
   */
  async close(deadline: number): Promise<void> {
    this.#gate.dropHeld();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const inFlight = new Set([...this.#handlers.inFlight].map((state) => state.id));
    for (const connection of this.#server.connections) {
      if (!inFlight.has(connection.session.id)) {
        connection.send(421, '4.3.2 Server shutting down, try again later');
        connection.close();
      }
    }
    while (this.#handlers.inFlight.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const connection of this.#server.connections) {
      connection.send(421, '4.3.2 Server shutting down, try again later');
      connection.close();
    }
    await closed;
  }

  /** A limit refused or closed a connection: one line an operator (or fail2ban) can act on. */
  #logLimit(event: LimitEvent): void {
    const { limit, value, sessionId, remoteAddress } = event;
    const shown = limit.endsWith('Timeout') ? describeDuration(value) : String(value);
    this.#log.info({ sid: sessionId, remote: remoteAddress, limit, value }, `connection ${limit.startsWith('clients') ? 'refused' : 'closed'}: ${limit} (${shown}) reached`);
  }

  /** Limits that are allowed but probably not meant (see limitWarnings), said once at start. */
  #warnAboutLimits(): void {
    for (const warning of limitWarnings(this.#limits)) this.#log.warn({ code: 'PETREL_LIMITS' }, warning);
  }

  #options(serverConfig: PetrelConfig, deps: ListenerDeps): SMTPServerOptions {
    const config = this.config;
    const tls = deps.tls;
    const reverse = config.reverseDns ?? serverConfig.dns.reverseLookup;
    const reverseLookup = deps.reverseLookup;
    return {
      ...reloadableOptions(serverConfig, this.#limits),
      secure: config.tls === 'implicit',
      hideSTARTTLS: config.tls === 'none' || config.tls === 'implicit',
      ...(tls ? tlsOptions(tls) : {}),
      rejectOversized: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      allowInsecureAuth: config.insecureAuth,
      disabledCommands: config.auth ? ALWAYS_DISABLED : [...ALWAYS_DISABLED, 'AUTH'],
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      hidePIPELINING: false,
      // smtp-server offers it on TLS connections only; the MAIL FROM parameter is refused where it was not offered.
      hideREQUIRETLS: !config.offerRequireTls,
      closeTimeout: serverConfig.server.shutdownTimeout,
      disableReverseLookup: !reverse || reverseLookup === undefined,
      // Allowed for everyone here; each session's disabled-command list keeps it to the configured hosts.
      useXClient: config.xclient.length > 0,
      resolver: reverseLookup
        ? {
            reverse: (ip, callback) => {
              reverseLookup.hostnameOf(ip).then(
                (name) => callback(null, name ? [name] : []),
                (error: Error) => callback(error),
              );
            },
          }
        : undefined,
      logger: bunyanAdapter(this.#log) as unknown as SMTPServerOptions['logger'],
      onConnect: this.#handlers.onConnect,
      onSecure: this.#handlers.onSecure as SMTPServerOptions['onSecure'],
      onAuth: this.#handlers.onAuth,
      onMailFrom: this.#handlers.onMailFrom,
      onRcptTo: this.#handlers.onRcptTo,
      onData: this.#handlers.onData,
      onClose: this.#handlers.onClose,
    };
  }
}

/** smtp-server options that come from the config and that a reload may change (read per session). */
function reloadableOptions(config: PetrelConfig, limits: Limits): Partial<SMTPServerOptions> {
  return {
    name: config.server.hostname,
    size: limits.messageSize,
    maxClients: limits.clients,
    maxRecipients: limits.recipients,
    maxCommandLength: limits.commandLength,
    socketTimeout: limits.socketTimeout,
  };
}

function tlsOptions(tls: TlsMaterial): Partial<SMTPServerOptions> {
  return { key: tls.key, cert: tls.cert, minVersion: tls.minVersion, SNICallback: tls.SNICallback };
}
