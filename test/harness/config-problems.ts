import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { ConfigError } from '../../core/config/config-error.js';
import { parseConfigText } from '../../core/config/load.js';
import { createLogger } from '../../core/log/logger.js';
import { Petrel } from '../../core/petrel.js';

/**
 * Writes `text` to `file`, loads it and builds the plugins as `petrel start`
 * would (nothing is started); resolves to the ConfigError's message, and
 * fails the test if the config was accepted or failed some other way.
 */
export async function configProblems(text: string, file: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  writeFileSync(file, text);
  try {
    const loaded = parseConfigText(text, file, env);
    await Petrel.build({ config: loaded, logger: createLogger({ level: 'silent' }) });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${(error as Error).stack}`);
    return error.message;
  }
  assert.fail('the config was accepted');
}
