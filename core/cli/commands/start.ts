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
  const petrel = await Petrel.start({ config: loaded, reloadConfig: () => loadConfigFile(context.configFile) });
  process.on('SIGHUP', () => {
    petrel.logger.info({ signal: 'SIGHUP' }, 'SIGHUP: reloading the configuration');
    petrel.reload().catch((error: unknown) =>
      petrel.logger.error({ err: error, code: (error as { code?: string }).code }, `reload refused, the running configuration stays: ${(error as Error).message}`),
    );
  });
  return new Promise<number>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      petrel.logger.info({ signal }, `${signal}: shutting down`);
      petrel.stop().then(
        () => resolve(0),
        (error: unknown) => {
          petrel.logger.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
}
