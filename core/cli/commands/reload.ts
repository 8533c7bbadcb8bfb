import { sendControlRequest } from '../../control/control-client.js';
import { controlSocketPath } from '../../control/control-protocol.js';
import { loadConfigFile } from '../../config/load.js';
import { makePaths } from '../../paths.js';
import type { CliContext } from '../petrel.js';

/**
 * `petrel reload`: asks the running server (over its control socket) to
 * re-read its config file, and prints what it answered: the plugins now in
 * force, or why the reload was refused. The same as SIGHUP, with an answer.
 */
export async function reloadCommand(context: CliContext): Promise<number> {
  const loaded = await loadConfigFile(context.configFile);
  const paths = makePaths(loaded.baseDir, loaded.config.server.dataDir);
  const answer = (await sendControlRequest(controlSocketPath(paths.dataDir), { op: 'reload' })) as { plugins: string[] } | undefined;
  if (answer === undefined) {
    context.out(`no running server on ${paths.dataDir} (nothing answers on its control socket)`);
    return 1;
  }
  context.out(`reloaded; plugins now: ${answer.plugins.join(', ')}`);
  return 0;
}
