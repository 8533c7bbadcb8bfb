import type { Logger } from '../log/logger.js';
import type { Petrel } from '../petrel.js';
import { EXIT, type ExitCode } from './exit-codes.js';

/** How long plugins get to close after the listeners and deliveries have stopped (server.shutdownTimeout). */
const CLOSE_MARGIN_MS = 10_000;

interface Ending {
  readonly reason: string;
  readonly code: ExitCode;
}

/**
 * What ends a `petrel start` process, and how. The first request to stop
 * decides; everything after it is logged and ignored:
 *
 * - SIGTERM, SIGINT: graceful stop (see Petrel.stop), exit 0. Ctrl-C under
 *   `npm start` sends SIGINT twice (the terminal signals the process group,
 *   and npm forwards its own), so a second signal must not kill the process
 *   in the middle of its shutdown.
 * - An uncaught exception: logged (with the plugin its stack points into),
 *   then the same graceful stop, and exit 70 so that a supervisor restarts
 *   the server.
 * - SIGHUP: reload (Petrel.reload); a refused reload is logged.
 * - An unhandled promise rejection: logged, naming the plugin when its stack
 *   shows it; the server keeps running (one plugin's forgotten promise must
 *   not take the MTA down).
 *
 * Every stop has a deadline (server.shutdownTimeout plus time for plugins to
 * close): a stop that hangs past it exits 70. Requests that come while the
 * server starts are carried out once it has started.
 */
export class ServerLifetime {
  readonly exited: Promise<number>;
  #resolveExit: (code: number) => void = () => undefined;
  #petrel: Petrel | undefined;
  #running = false;
  #ending: Ending | undefined;
  #reloadPending = false;

  constructor(
    private readonly log: Logger,
    private readonly shutdownTimeoutMs: number,
  ) {
    this.exited = new Promise((resolve) => (this.#resolveExit = resolve));
  }

  /**
   * Installs the process handlers; call before anything starts, so no signal finds the default action (exit).
   * A worker of server.workers (`worker: true`) reloads when its primary asks, not on SIGHUP (a terminal's
   * hangup reaches the whole process group, and the primary passes it on), and stops when its primary is gone.
   */
  install(options: { worker?: boolean } = {}): void {
    if (options.worker) {
      process.on('SIGHUP', () => this.log.debug({ signal: 'SIGHUP' }, 'SIGHUP: the primary process reloads the workers'));
      process.on('disconnect', () => this.#end({ reason: 'the primary process is gone', code: EXIT.ok }));
    } else {
      process.on('SIGHUP', () => this.#reload());
    }
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => this.#end({ reason: signal, code: EXIT.ok }));
    process.on('unhandledRejection', (reason) => this.#unhandledRejection(reason));
    process.on('uncaughtException', (error) => this.#uncaughtException(error));
  }

  /** The server is built: from now on crashes can be traced to its plugins. */
  built(petrel: Petrel): void {
    this.#petrel = petrel;
  }

  /** The server is up: carry out what was asked while it started. */
  started(): void {
    this.#running = true;
    if (this.#ending) this.#stop();
    else if (this.#reloadPending) this.#reload();
  }

  #reload(): void {
    const petrel = this.#petrel;
    if (!petrel || !this.#running) {
      this.#reloadPending = true;
      return;
    }
    if (this.#ending) {
      this.log.info({ signal: 'SIGHUP' }, 'SIGHUP while shutting down: ignored');
      return;
    }
    this.log.info({ signal: 'SIGHUP' }, 'SIGHUP: reloading the configuration');
    petrel.reload().catch((error: unknown) =>
      this.log.error({ err: error, code: (error as { code?: string }).code }, `reload refused, the running configuration stays: ${(error as Error).message}`),
    );
  }

  #end(ending: Ending): void {
    if (this.#ending) {
      this.log.warn(
        { signal: ending.reason, stopping: this.#ending.reason },
        `${ending.reason} while shutting down (${this.#ending.reason}): ignored; the shutdown ends within ${Math.ceil(this.#deadlineMs / 1000)}s (SIGKILL stops the process at once)`,
      );
      return;
    }
    this.#ending = ending;
    if (ending.code === EXIT.ok) this.log.info({ signal: ending.reason }, `${ending.reason}: shutting down`);
    // Armed now, also while starting: a crash can leave start() waiting forever.
    setTimeout(() => {
      this.log.fatal({ reason: ending.reason }, `shutdown did not finish within ${Math.ceil(this.#deadlineMs / 1000)}s; exiting`);
      this.log.flush();
      process.exit(EXIT.software);
    }, this.#deadlineMs);
    if (this.#running) this.#stop();
  }

  #stop(): void {
    const { code } = this.#ending as Ending;
    (this.#petrel as Petrel).stop().then(
      () => this.#exit(code),
      (error: unknown) => {
        this.log.error({ err: error }, `shutdown failed: ${(error as Error).message}`);
        this.#exit(code === EXIT.ok ? EXIT.software : code);
      },
    );
  }

  #exit(code: number): void {
    this.#resolveExit(code);
    // The deadline timer must not keep the process alive once the stop is done.
    process.exit(code);
  }

  get #deadlineMs(): number {
    return this.shutdownTimeoutMs + CLOSE_MARGIN_MS;
  }

  #unhandledRejection(reason: unknown): void {
    const plugin = this.#petrel?.pluginBlamedFor(reason);
    this.log.error(
      { err: reason, plugin, code: 'PETREL_UNHANDLED_REJECTION' },
      `unhandled promise rejection ${plugin ? `in plugin ${plugin}` : 'in no plugin the stack shows'} (a bug; the server keeps running): ${messageOf(reason)}`,
    );
  }

  #uncaughtException(error: Error): void {
    const plugin = this.#petrel?.pluginBlamedFor(error);
    const where = plugin ? `in plugin ${plugin}` : 'in no plugin the stack shows';
    if (this.#ending) {
      this.log.fatal({ err: error, plugin, code: 'PETREL_UNCAUGHT_EXCEPTION' }, `uncaught exception ${where} while shutting down: ${messageOf(error)}`);
      return;
    }
    this.log.fatal(
      { err: error, plugin, code: 'PETREL_UNCAUGHT_EXCEPTION' },
      `uncaught exception ${where}: ${messageOf(error)}; stopping gracefully, then exiting ${EXIT.software} for the supervisor to restart the server`,
    );
    this.#end({ reason: 'uncaught exception', code: EXIT.software });
  }
}

function messageOf(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
