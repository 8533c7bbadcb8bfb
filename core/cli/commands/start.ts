import { loadConfigFile } from '../../config/load.js';
import { createLogger } from '../../log/logger.js';
import { Petrel } from '../../petrel.js';
import { ServerIdentity } from '../../privileges/server-identity.js';
import { warnIfFewFileDescriptors } from '../../util/open-file-limit.js';
import type { CliContext } from '../petrel.js';
import { ServerLifetime } from '../server-lifetime.js';

/**
 * Runs the MTA until SIGTERM or SIGINT, then shuts down gracefully: no new
 * connections, messages being received may finish, plugins close, exit 0.
 * SIGHUP re-reads the config file (see Petrel.reload). ServerLifetime says
 * what happens on repeated signals and on crashes.
 *
 * The process handlers are installed before start: listeners open during
 * start, and a signal's default action (exit) would cut sessions off.
 */
export async function startCommand(context: CliContext): Promise<number> {
  const loaded = await loadConfigFile(context.configFile);
  // Before anything else: started as root without server.user, nothing should happen at all.
  const identity = ServerIdentity.resolve(loaded.config.server);
  const logger = createLogger({ level: loaded.config.logging.level, format: loaded.config.logging.format });
  const lifetime = new ServerLifetime(logger, loaded.config.server.shutdownTimeout);
  lifetime.install();
  warnIfFewFileDescriptors(loaded.config, logger);
  const petrel = await Petrel.build({ config: loaded, logger, identity, reloadConfig: () => loadConfigFile(context.configFile) });
  lifetime.built(petrel);
  await petrel.start();
  lifetime.started();
  return lifetime.exited;
}
