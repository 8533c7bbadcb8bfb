import { z } from 'zod';
import { builtinPluginNames, importPluginClass } from '../plugins/module-resolver.js';
import { configSchema } from './schema.js';

type JsonSchema = Record<string, unknown>;

/**
 * The JSON Schema of mta.config.yaml, for editors (yaml-language-server) and
 * CI checks: the core schema, with each built-in plugin's options schema
 * attached to entries that name that plugin. Generated from the same zod
 * schemas that validate the config at boot, so the two cannot disagree.
 */
export async function configJsonSchema(): Promise<JsonSchema> {
  const schema = toJson(configSchema);
  const server = (schema.properties as Record<string, JsonSchema>).server;
  // The default hostname is the machine's; it has no place in a published schema.
  delete ((server.properties as Record<string, JsonSchema>).hostname as JsonSchema).default;
  const plugins = (schema.properties as Record<string, JsonSchema>).plugins;
  const entry = plugins.items as JsonSchema;
  const names = builtinPluginNames();
  (entry.properties as Record<string, JsonSchema>).name = {
    ...(entry.properties as Record<string, JsonSchema>).name,
    enum: names,
  };
  const conditionals: JsonSchema[] = [];
  for (const name of names) {
    const pluginClass = await importPluginClass({ name, enabled: true, options: {} }, process.cwd());
    const options = pluginClass.options ? toJson(pluginClass.options) : { type: 'object', additionalProperties: false, maxProperties: 0 };
    delete options.$schema;
    conditionals.push({
      if: { required: ['name'], properties: { name: { const: name } } },
      then: { properties: { options: { ...options, description: pluginClass.meta.description } } },
    });
  }
  plugins.items = { ...entry, allOf: conditionals };
  return {
    $id: 'https://petrel.dev/schema/mta.config.json',
    title: 'Petrel mta.config.yaml',
    ...schema,
  };
}

function toJson(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}
