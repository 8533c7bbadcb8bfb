import { z } from 'zod';
import { parseServerAddress } from '../dns/server-address.js';
import { parseCidr } from '../util/networks.js';

/**
 * Durations and sizes as operators write them ("30s", "5m", "25MiB"). A bare
 * number is milliseconds or bytes. Parsed once at load time, so the rest of
 * the code only ever sees numbers.
 */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1, k: 1_000, kb: 1_000, m: 1_000_000, mb: 1_000_000, g: 1_000_000_000, gb: 1_000_000_000,
  kib: 1_024, mib: 1_048_576, gib: 1_073_741_824,
};

const DURATION_TEXT = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const SIZE_TEXT = /^(\d+(?:\.\d+)?)\s*([bB]|[kK][bB]?|[mM][bB]?|[gG][bB]?|[kK]i[bB]|[mM]i[bB]|[gG]i[bB])$/;

export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const match = DURATION_TEXT.exec(value.trim());
  return match ? Math.round(Number(match[1]) * DURATION_UNITS[match[2].toLowerCase()]) : undefined;
}

/** A duration as an operator would write it, exactly (parseDuration reads it back): 330000 → `330s`, 900000 → `15m`. */
export function durationText(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const match = SIZE_TEXT.exec(value.trim());
  return match ? Math.round(Number(match[1]) * SIZE_UNITS[match[2].toLowerCase()]) : undefined;
}

/** A duration option: `30s`, `5m`, `100ms`, `4h`, `5d`, or a number of milliseconds. */
export const duration = () =>
  z.union([z.number(), z.string().meta({ pattern: DURATION_TEXT.source })]).transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration like 100ms, 30s, 5m, 4h or 5d', input: value });
      return z.NEVER;
    }
    return parsed;
  });

/** A size option: `25MiB`, `10MB`, `512KiB`, or a number of bytes. */
export const size = () =>
  z.union([z.number(), z.string().meta({ pattern: SIZE_TEXT.source })]).transform((value, ctx) => {
    const parsed = parseSize(value);
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a size like 512KiB, 25MiB or a number of bytes', input: value });
      return z.NEVER;
    }
    return parsed;
  });

/** A TCP port; numeric strings are accepted because `${PORT}` interpolation yields text. */
export const port = () =>
  z.union([z.number(), z.string()]).transform((value, ctx) => {
    const parsed = typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) {
      ctx.addIssue({ code: 'custom', message: 'expected a port number from 0 to 65535', input: value });
      return z.NEVER;
    }
    return parsed;
  });

/** An IPv4 or IPv6 network (`192.0.2.0/24`, `2001:db8::/32`) or a single address. */
export const cidr = () =>
  z.string().refine((value) => parseCidr(value) !== undefined, 'expected a network like 192.0.2.0/24 or 2001:db8::/32');

/** A name server: an IP address, with a port after it (`127.0.0.1:5353`, `[::1]:53`) when not 53. */
export const dnsServer = () =>
  z.string().refine((value) => parseServerAddress(value) !== undefined, 'expected a name server address like 127.0.0.1, 127.0.0.1:5353 or [::1]:53');

/** A regular expression option: a non-empty string that compiles with `flags` (the flags the code will use). */
export const regularExpression = (flags: string) =>
  z.string().min(1, 'expected a regular expression, not an empty string (it would match everything)').refine((source) => {
    try {
      new RegExp(source, flags);
      return true;
    } catch {
      return false;
    }
  }, 'expected a JavaScript regular expression');
