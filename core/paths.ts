import { isAbsolute, resolve } from 'node:path';

/** Where things live on disk, as a plugin sees it. */
export interface Paths {
  /** The directory of mta.config.yaml; relative paths in options resolve from here. */
  readonly configDir: string;
  /** All state lives under this directory (`server.dataDir`). */
  readonly dataDir: string;
  /** A path from the config, made absolute. */
  resolve(path: string): string;
}

export function makePaths(configDir: string, dataDir: string): Paths {
  const fromConfig = (path: string) => (isAbsolute(path) ? path : resolve(configDir, path));
  return { configDir, dataDir: fromConfig(dataDir), resolve: fromConfig };
}
