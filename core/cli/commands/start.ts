import { loadConfigFile } from '../../config/load.js';
import { Petrel } from '../../petrel.js';
import type { CliContext } from '../petrel.js';

/**
 * Runs the MTA until SIGTERM or SIGINT, then shuts down gracefully: no new
 * connections, messages being received may finish, plugins close, exit 0.
 * SIGHUP re-reads the config file (see Petrel.reload): a broken or
 * restart-only change is logged and the running config stays.
 *
 * The signal handlers are installed before start: listeners open during
 * start, and a signal's default action (exit) would cut sessions off. A
 * signal that arrives while starting is carried out once started.
 */
export async function startCommand(context: CliContext): Promise<number> {
  const loaded = await loadConfigFile(context.configFile);
  let petrel: Petrel | undefined;
  let pending: { hup: boolean; stop?: NodeJS.Signals } = { hup: false };
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));

  const reload = (server: Petrel) => {
    server.logger.info({ signal: 'SIGHUP' }, 'SIGHUP: reloading the configuration');
    server.reload().catch((error: unknown) =>
      server.logger.error({ err: error, code: (error as { code?: string }).code }, `reload refused, the running configuration stays: ${(error as Error).message}`),
    );
  };
  const shutdown = (server: Petrel, signal: NodeJS.Signals) => {
    server.logger.info({ signal }, `${signal}: shutting down`);
    server.stop().then(
      () => resolveExit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'shutdown failed');
        resolveExit(1);
      },
    );
  };

  process.on('SIGHUP', () => {
    if (petrel) reload(petrel);
    else pending = { ...pending, hup: true };
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      if (petrel) shutdown(petrel, signal);
      else pending = { ...pending, stop: signal };
    });
  }

  petrel = await Petrel.start({ config: loaded, reloadConfig: () => loadConfigFile(context.configFile) });
  if (pending.stop) shutdown(petrel, pending.stop);
  else if (pending.hup) reload(petrel);
  return exited;
}
