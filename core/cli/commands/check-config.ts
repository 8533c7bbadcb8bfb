import { loadConfigFile } from '../../config/load.js';
import { createLogger } from '../../log/logger.js';
import { Petrel } from '../../petrel.js';
import type { CliContext } from '../petrel.js';

/**
 * Validates the config file and every plugin's options, exactly as `start`
 * would, without opening ports or touching the queue. Problems are thrown as
 * ConfigError and printed by the CLI with file:line for each.
 */
export async function checkConfigCommand(context: CliContext): Promise<number> {
  const loaded = await loadConfigFile(context.configFile);
  const petrel = await Petrel.build({ config: loaded, logger: createLogger({ level: 'silent' }) });
  const names = petrel.plugins.plugins.map((p) => `${p.name}@${p.version}`).join(', ');
  context.out(`${context.configFile}: ok (${loaded.config.listeners.length} listeners; plugins: ${names})`);
  return 0;
}
