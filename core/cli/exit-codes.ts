import { ConfigError } from '../config/config-error.js';
import type { ErrorCode } from '../errors.js';

/**
 * The exit statuses of `petrel`, from BSD's sysexits.h where one fits, so a
 * supervisor or a script can tell a config mistake (fix it, do not restart)
 * from an outage (restart later). docs/operations.md lists them.
 */
export const EXIT = {
  ok: 0,
  /** A command answered "no" (no such message, a refused reload). */
  failed: 1,
  /** EX_USAGE: the command line was wrong. */
  usage: 64,
  /** EX_DATAERR: the input was wrong (a message `petrel sendmail` cannot send: too large, bad addresses in it). */
  dataErr: 65,
  /** EX_NOINPUT: a file the config names does not exist or cannot be read. */
  noInput: 66,
  /** EX_UNAVAILABLE: something the server needs is not there (Redis, a plugin that failed or timed out at start). */
  unavailable: 69,
  /** EX_SOFTWARE: an internal error (an uncaught exception, a bug). */
  software: 70,
  /** EX_OSERR: the system refused a resource (the port is in use, too few file descriptors). */
  osError: 71,
  /** EX_TEMPFAIL: another process holds what we need (the queue, the data directory); try again once it is gone. */
  tempFail: 75,
  /** EX_NOPERM: permission denied (a port below 1024, a file). */
  noPermission: 77,
  /** EX_CONFIG: the configuration is invalid. */
  config: 78,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const BY_ERRNO: Readonly<Record<string, ExitCode>> = {
  ENOENT: EXIT.noInput,
  EACCES: EXIT.noPermission,
  EPERM: EXIT.noPermission,
  EADDRINUSE: EXIT.osError,
  EADDRNOTAVAIL: EXIT.osError,
  EMFILE: EXIT.osError,
  ENFILE: EXIT.osError,
  ECONNREFUSED: EXIT.unavailable,
  ETIMEDOUT: EXIT.unavailable,
  EHOSTUNREACH: EXIT.unavailable,
  ENOTFOUND: EXIT.unavailable,
};

const BY_PETREL_CODE: Partial<Record<ErrorCode, ExitCode>> = {
  PETREL_CONFIG_INVALID: EXIT.config,
  PETREL_PLUGIN_START: EXIT.unavailable,
  PETREL_REDIS_UNREACHABLE: EXIT.unavailable,
  PETREL_LISTEN_FAILED: EXIT.osError,
  PETREL_QUEUE_LOCKED: EXIT.tempFail,
  PETREL_QUEUE_FOREIGN: EXIT.config,
  PETREL_CONTROL_IN_USE: EXIT.tempFail,
  // The running server refused the request (a reload of a config it cannot use) or did not answer.
  PETREL_CONTROL_FAILED: EXIT.failed,
  PETREL_TLS: EXIT.noInput,
  // Started as root without server.user, or naming no account: fix the config.
  PETREL_RUN_AS_ROOT: EXIT.config,
  PETREL_ACCOUNT_UNKNOWN: EXIT.config,
  PETREL_WRONG_USER: EXIT.noPermission,
  PETREL_DATA_DIR_OWNER: EXIT.noPermission,
  PETREL_PRIVILEGE_DROP: EXIT.osError,
};

/**
 * The exit status for an error that stopped a command. The most specific
 * cause decides: a plugin that failed to start because its file is missing
 * exits 66, one that failed for another reason 69.
 */
export function exitCodeFor(error: unknown): ExitCode {
  const chain: unknown[] = [];
  for (let cause = error; cause !== undefined && cause !== null && chain.length < 10; cause = (cause as { cause?: unknown }).cause) chain.push(cause);
  for (const cause of chain.reverse()) {
    if (cause instanceof ConfigError) return EXIT.config;
    const code = (cause as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    const status = BY_PETREL_CODE[code as ErrorCode] ?? BY_ERRNO[code];
    if (status !== undefined) return status;
  }
  return EXIT.software;
}
