import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './config-error.js';
import { interpolateEnvironment } from './env-interpolation.js';
import { readConfigText } from './load.js';
import { configSchema, type PetrelConfig } from './schema.js';
import { YamlSource } from './yaml-source.js';
import { toConfigIssues } from './zod-issues.js';

/** The parts of the config a local program's `petrel sendmail` needs. */
export interface ServerSettings {
  readonly server: PetrelConfig['server'];
  readonly limits: PetrelConfig['limits'];
  /** The directory of the config file: server.dataDir resolves from here. */
  readonly baseDir: string;
}

const sections = z.object({ server: configSchema.shape.server, limits: configSchema.shape.limits });

/**
 * Reads only `server` and `limits` from a config file, for `petrel sendmail`.
 * It runs as whichever local user sends mail (cron, PHP, git), without the
 * server's environment: a `${SMARTHOST_PASSWORD}` elsewhere in the file is the
 * server's business, so unset variables and problems outside these two
 * sections are not this reader's to report (`petrel check-config` does).
 */
export async function loadServerSettings(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ServerSettings> {
  const text = await readConfigText(file);
  const source = new YamlSource(file, text);
  const syntax = source.syntaxIssues();
  if (syntax.length > 0) throw new ConfigError(syntax);
  const missing = interpolateEnvironment(source, env).filter((issue) => /^(server|limits)\b/.test(issue.path));
  if (missing.length > 0) throw new ConfigError(missing);
  const raw = (source.document.toJS() ?? {}) as Record<string, unknown>;
  const parsed = sections.safeParse({ server: raw.server, limits: raw.limits }, { reportInput: true });
  if (!parsed.success) throw new ConfigError(toConfigIssues(parsed.error, source));
  return { ...parsed.data, baseDir: dirname(resolve(file)) };
}
