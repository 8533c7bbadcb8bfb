import { z } from 'zod';
import { duration, size } from '../config/units.js';

/** Per-plugin defaults for the shared options (a scanner with a size limit of its own says so). */
export interface ScanOptionDefaults {
  readonly timeout?: string;
  readonly maxSize?: string;
}

/**
 * The options every content scanner has, with the same names and meaning:
 * spread into the plugin's schema so configs stay portable between scanners.
 *
 *   export const options = z.strictObject({ url: z.url(), ...scanOptions() });
 *
 * `timeout` should stay below the `message` hook's timeout (60s by default),
 * or the hook runner answers 451 4.3.0 before the scanner's own rule applies.
 */
export function scanOptions(defaults: ScanOptionDefaults = {}) {
  return {
    timeout: duration()
      .prefault(defaults.timeout ?? '20s')
      .describe('how long the scanner may take to answer; past it the message is not scanned and failMode decides'),
    maxSize: size()
      .prefault(defaults.maxSize ?? '20MB')
      .describe('bigger messages are not sent to the scanner: they pass, marked "not scanned: too big"'),
    failMode: z
      .enum(['tempfail', 'accept'])
      .default('tempfail')
      .describe('scanner down, slow, or answering garbage: tempfail (451 4.7.1, the client retries) or accept (passes, marked not scanned)'),
    scanAuthenticated: z.boolean().default(false).describe('also scan mail from authenticated (submission) clients'),
  };
}

/** The parsed shared options, as a scanner plugin's constructor gets them. */
export interface ScanOptions {
  /** Milliseconds. */
  readonly timeout: number;
  /** Bytes. */
  readonly maxSize: number;
  readonly failMode: 'tempfail' | 'accept';
  readonly scanAuthenticated: boolean;
}
