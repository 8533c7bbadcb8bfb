import { access } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';

export interface FileAtStart {
  /** What the file is, for messages: `recipients file`, `users file`. */
  readonly what: string;
  /** The `optional: true` of the plugin's options. */
  readonly optional: boolean;
  /** How to make the file: `petrel user add LOGIN creates it`. */
  readonly create: string;
  /** What a missing optional file means while it is missing: `nobody can log in`. */
  readonly meanwhile: string;
}

/**
 * Checks at a plugin's start that a data file its options name exists.
 * Files like these are read as empty while missing, so a typo in a path
 * would quietly refuse every local recipient or every login; a missing file
 * therefore stops the start (an error with code ENOENT, so the server exits
 * 66, EX_NOINPUT), unless the operator marked it optional, in which case a
 * warning says what is missing and what that means. Resolves to whether the
 * file exists.
 */
export async function checkFileAtStart(path: string, file: FileAtStart, log: Logger): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (!file.optional) {
    throw Object.assign(new Error(`${file.what} ${path} does not exist: ${file.create}, or set optional: true in the plugin's options to start without it`), {
      code: 'ENOENT',
    });
  }
  log.warn({ file: path }, `${file.what} ${path} does not exist (optional: true): ${file.meanwhile} until it does; it is read as soon as it appears`);
  return false;
}
