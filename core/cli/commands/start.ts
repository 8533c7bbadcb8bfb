import { loadConfigFile } from '../../config/load.js';
import { createLogger } from '../../log/logger.js';
import { Petrel } from '../../petrel.js';
import { ServerIdentity } from '../../privileges/server-identity.js';
import { warnIfFewFileDescriptors } from '../../util/open-file-limit.js';
import type { CliContext } from '../petrel.js';
import { ServerLifetime } from '../server-lifetime.js';
import { WorkerChannel } from '../../workers/worker-channel.js';
import { WorkerPrimary } from '../../workers/worker-primary.js';
import { workerCount, workerLaunchFromEnv } from '../../workers/worker-protocol.js';

/**
 * Runs the MTA until SIGTERM or SIGINT, then shuts down gracefully: no new
 * connections, messages being received may finish, plugins close, exit 0.
 * SIGHUP re-reads the config file (see Petrel.reload). ServerLifetime says
 * what happens on repeated signals and on crashes.
 *
 * The process handlers are installed before start: listeners open during
 * start, and a signal's default action (exit) would cut sessions off.
 *
 * With `server.workers` above 1 this process becomes the primary
 * (core/workers/worker-primary.ts) and runs the same command again as each
 * worker, which it tells by the PETREL_WORKER environment variable.
 */
export async function startCommand(context: CliContext): Promise<number> {
  const loaded = await loadConfigFile(context.configFile);
  // Before anything else: started as root without server.user, nothing should happen at all.
  const identity = ServerIdentity.resolve(loaded.config.server);
  const logger = createLogger({ level: loaded.config.logging.level, format: loaded.config.logging.format });
  const launch = workerLaunchFromEnv();
  const workers = workerCount(loaded.config.server.workers);
  if (!launch && workers > 1) {
    warnIfFewFileDescriptors(loaded.config, logger);
    return new WorkerPrimary({ count: workers, log: logger, shutdownTimeoutMs: loaded.config.server.shutdownTimeout }).run();
  }
  const lifetime = new ServerLifetime(logger, loaded.config.server.shutdownTimeout);
  lifetime.install({ worker: launch !== undefined });
  if (!launch) warnIfFewFileDescriptors(loaded.config, logger);
  const worker = launch ? { launch, channel: new WorkerChannel(launch.index) } : undefined;
  const petrel = await Petrel.build({ config: loaded, logger, identity, worker, reloadConfig: () => loadConfigFile(context.configFile) });
  lifetime.built(petrel);
  await petrel.start();
  lifetime.started();
  return lifetime.exited;
}
