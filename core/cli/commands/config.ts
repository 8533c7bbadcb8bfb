import { configJsonSchema } from '../../config/json-schema.js';
import type { CliContext } from '../petrel.js';

/** `petrel config schema`: prints the JSON Schema of mta.config.yaml (core and built-in plugins). */
export async function configCommand(context: CliContext): Promise<number> {
  const [action] = context.args;
  if (action !== 'schema') return context.usage(action === undefined ? 'which config command?' : `unknown config command "${action}"`, 'usage: petrel config schema');
  context.out(JSON.stringify(await configJsonSchema(), null, 2));
  return 0;
}
