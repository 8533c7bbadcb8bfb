import { isAbsolute, join, resolve } from 'node:path';

/** Which of `server.workers` processes this is (see core/workers/). */
export interface WorkerSlot {
  /** 0 to count - 1; worker 0 also serves the control socket, the admin listener and the maildrop. */
  readonly index: number;
  readonly count: number;
}

/** Where things live on disk, as a plugin sees it. */
export interface Paths {
  /** The directory of mta.config.yaml; relative paths in options resolve from here. */
  readonly configDir: string;
  /** All state lives under this directory (`server.dataDir`). */
  readonly dataDir: string;
  /** Set when this process is one of several workers (`server.workers` above 1). */
  readonly worker?: WorkerSlot;
  /** A path from the config, made absolute. */
  resolve(path: string): string;
  /**
   * The directory this process keeps its own share of something in (an
   * embedded queue's files), given the configured one relative to dataDir:
   * that directory itself for a single process and for worker 0, and its
   * subdirectory `worker-<i>` for worker i. A worker that dies is started
   * again with the same index and takes its directory up again, so a queue
   * that stores under this directory needs no coordination between workers;
   * it must leave the `worker-<i>` entries in its own directory alone.
   */
  partition(directory: string): string;
}

export function makePaths(configDir: string, dataDir: string, worker?: WorkerSlot): Paths {
  const fromConfig = (path: string) => (isAbsolute(path) ? path : resolve(configDir, path));
  const absoluteDataDir = fromConfig(dataDir);
  return {
    configDir,
    dataDir: absoluteDataDir,
    ...(worker ? { worker } : {}),
    resolve: fromConfig,
    partition: (directory) => partitionOf(resolve(absoluteDataDir, directory), worker?.index ?? 0),
  };
}

/** Worker `index`'s share of `directory` (see Paths.partition). */
export function partitionOf(directory: string, index: number): string {
  return index === 0 ? directory : join(directory, `worker-${index}`);
}
