import { loadConfigFile } from '../../config/load.js';
import { Petrel } from '../../petrel.js';
import type { CliContext } from '../petrel.js';

/**
 * Runs the MTA until SIGTERM or SIGINT, then shuts down gracefully: no new
 * connections, messages being received may finish, plugins close, exit 0.
 * SIGHUP re-reads the config file (see Petrel.reload): a broken or
 * restart-only change is logged and the running config stays.
 */
export async function startCommand(context: CliContext): Promise<number> {
  const loaded = await loadConfigFile(context.configFile);
  // Installed before start: the default action of SIGHUP would kill the process,
  // and a HUP can arrive while the listeners open. It is carried out once up.
  let petrel: Petrel | undefined;
  let hupWhileStarting = false;
  const reload = (server: Petrel) => {
    server.logger.info({ signal: 'SIGHUP' }, 'SIGHUP: reloading the configuration');
    server.reload().catch((error: unknown) =>
      server.logger.error({ err: error, code: (error as { code?: string }).code }, `reload refused, the running configuration stays: ${(error as Error).message}`),
    );
  };
  process.on('SIGHUP', () => {
    if (petrel) reload(petrel);
    else hupWhileStarting = true;
  });
  petrel = await Petrel.start({ config: loaded, reloadConfig: () => loadConfigFile(context.configFile) });
  if (hupWhileStarting) reload(petrel);
  const running = petrel;
  return new Promise<number>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      running.logger.info({ signal }, `${signal}: shutting down`);
      running.stop().then(
        () => resolve(0),
        (error: unknown) => {
          running.logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
}
