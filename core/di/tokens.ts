/**
 * Every injection token, in one place. A plugin constructor names what it
 * needs with `@inject(TOKENS.X)` on each parameter, so it also works where
 * decorator metadata is not emitted (esbuild, tsx, plain JavaScript).
 *
 * | token          | type                         | scope                                  |
 * |----------------|------------------------------|----------------------------------------|
 * | Config         | PetrelConfig                 | whole server                           |
 * | Paths          | Paths                        | whole server                           |
 * | Clock          | Clock                        | whole server                           |
 * | Dns            | DnsResolver                  | whole server                           |
 * | Spool          | Spool                        | whole server                           |
 * | Queue          | Queue                        | whole server, from the queue plugin    |
 * | Redis          | ioredis Redis                | only when `redis:` is configured       |
 * | ExpiringStores | ExpiringStores               | whole server, survives reloads         |
 * | Metrics        | Metrics (prom-client)        | whole server, survives reloads         |
 * | Logger         | Logger                       | per plugin: carries `plugin: <name>`   |
 * | PluginOptions  | the plugin's parsed options  | per plugin                             |
 */
export const TOKENS = {
  Config: Symbol.for('petrel.Config'),
  Paths: Symbol.for('petrel.Paths'),
  Clock: Symbol.for('petrel.Clock'),
  Dns: Symbol.for('petrel.Dns'),
  Spool: Symbol.for('petrel.Spool'),
  Queue: Symbol.for('petrel.Queue'),
  Redis: Symbol.for('petrel.Redis'),
  ExpiringStores: Symbol.for('petrel.ExpiringStores'),
  Metrics: Symbol.for('petrel.Metrics'),
  Logger: Symbol.for('petrel.Logger'),
  PluginOptions: Symbol.for('petrel.PluginOptions'),
} as const;

export type TokenName = keyof typeof TOKENS;
