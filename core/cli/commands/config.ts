import { configJsonSchema } from '../../config/json-schema.js';
import type { CliContext } from '../petrel.js';

/** `petrel config schema`: prints the JSON Schema of mta.config.yaml (core and built-in plugins). */
export async function configCommand(context: CliContext): Promise<number> {
  const [action] = context.args;
  if (action !== 'schema') {
    context.out('usage: petrel config schema');
    return 2;
  }
  context.out(JSON.stringify(await configJsonSchema(), null, 2));
  return 0;
}
