import type { PetrelConfig } from '../config/schema.js';
import type { HookRunner } from '../hooks/runner.js';

/**
 * What a session runs on: the config and the hooks of one generation of
 * plugins. A session keeps the pipeline it started with, so a config reload
 * changes new sessions only; the old pipeline's plugins are closed once its
 * last session has ended.
 */
export interface SessionPipeline {
  readonly config: PetrelConfig;
  readonly runner: HookRunner;
  /** A session started on this pipeline. */
  enter(): void;
  /** A session on this pipeline ended. */
  leave(): void;
}
