import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { interpolateEnvironment } from './env-interpolation.js';
import { effectiveLimits, limitProblems } from './limits-schema.js';
import { configSchema, type PetrelConfig } from './schema.js';
import { issueAt, objectLocator, YamlSource, type ConfigLocator } from './yaml-source.js';
import { toConfigIssues } from './zod-issues.js';

/** A validated configuration and where it came from. */
export interface LoadedConfig {
  readonly config: PetrelConfig;
  /** Relative paths in the config (dataDir, TLS files, plugin paths) resolve from here. */
  readonly baseDir: string;
  /** Points plugin option errors at their lines. */
  readonly locator: ConfigLocator;
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  return parseConfigText(await readConfigText(file), file, env);
}

/** The text of a config file, or a ConfigError that says why it cannot be read. */
export async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new ConfigError([{ file, line: 0, column: 0, path: '', message: `cannot read config: ${reason}` }]);
  }
}

export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const source = new YamlSource(file, text);
  const syntax = source.syntaxIssues();
  if (syntax.length > 0) throw new ConfigError(syntax);
  const missingVariables = interpolateEnvironment(source, env);
  if (missingVariables.length > 0) throw new ConfigError(missingVariables);
  const raw: unknown = source.document.toJS() ?? {};
  return validate(raw, source, dirname(resolve(file)));
}

/** For tests and embedding: a config given as a plain object. */
export function configFromObject(raw: unknown, baseDir = process.cwd()): LoadedConfig {
  return validate(raw, objectLocator(), baseDir);
}

function validate(raw: unknown, locator: ConfigLocator, baseDir: string): LoadedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([issueAt(locator, [], 'expected a mapping at the top level')]);
  }
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(toConfigIssues(parsed.error, locator, [], '', configSchema));
  const config = parsed.data;
  const issues: ConfigIssue[] = [];
  const names = new Set<string>();
  // A contradiction in the top-level limits shows on every listener; it is reported once.
  const limitIssues = new Map<string, ConfigIssue>();
  config.listeners.forEach((listener, index) => {
    if (names.has(listener.name)) {
      issues.push(issueAt(locator, ['listeners', index, 'name'], `listener name "${listener.name}" is used twice`));
    }
    names.add(listener.name);
    for (const problem of limitProblems(effectiveLimits(config.limits, listener.limits), listener.limits, index)) {
      limitIssues.set(`${problem.path.join('.')} ${problem.message}`, issueAt(locator, problem.path, problem.message));
    }
    const needsCertificate = listener.tls !== 'none';
    const hasCertificate = config.tls !== undefined && (config.tls.cert !== undefined || config.tls.selfSigned);
    if (needsCertificate && !hasCertificate) {
      issues.push(
        issueAt(
          locator,
          ['listeners', index, 'tls'],
          `"${listener.tls}" needs a certificate: set tls.cert and tls.key (or tls.selfSigned: true for development), or use tls: none`,
        ),
      );
    }
  });
  issues.push(...limitIssues.values());
  if (config.delivery.shaping.store === 'redis' && !config.redis) {
    issues.push(issueAt(locator, ['delivery', 'shaping', 'store'], 'store: redis needs a redis: section (redis: { url: redis://127.0.0.1:6379 }); or use store: memory'));
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return { config, baseDir, locator };
}
