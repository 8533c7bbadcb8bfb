/**
 * Every error code Petrel itself raises, in one file. A code is stable and
 * searchable; the message says what went wrong and what to do.
 *
 * Configuration problems, including a plugin that cannot be found, imported
 * or used, are ConfigError (core/config/config-error.ts) with code
 * PETREL_CONFIG_INVALID and a file:line for each issue.
 */
export const ERROR_CODES = {
  PETREL_CONFIG_INVALID: 'the configuration is invalid (see the listed issues)',
  PETREL_HOOKS_SEALED: 'a plugin tried to add a hook handler after start',
  PETREL_HOOK_HANDLER: 'a hook handler is not a function',
  PETREL_HOOK_FAILED: 'a hook handler threw or timed out; the client got 451 4.3.0',
  PETREL_PLUGIN_START: 'a plugin failed to start, or did not finish starting within its startTimeout',
  PETREL_LISTEN_FAILED: 'a listener could not open its address (port in use, permission denied, no such address)',
  PETREL_REDIS_UNREACHABLE: 'Redis did not answer at start',
  PETREL_UNHANDLED_REJECTION: 'a promise rejected with nobody handling it (a bug, usually in a plugin); logged, the server keeps running',
  PETREL_UNCAUGHT_EXCEPTION: 'an exception nobody caught (a bug); the server stops gracefully and exits 70 for its supervisor to restart it',
  PETREL_OPEN_FILE_LIMIT: 'the open-file limit (ulimit -n) is lower than the configured connections can need',
  PETREL_NO_QUEUE: 'no plugin provides the queue',
  PETREL_QUEUE_UNAVAILABLE: 'the queue could not store a message; the client got 451',
  PETREL_QUEUE_LOCKED: 'another process owns the queue directory',
  PETREL_QUEUE_FOREIGN: 'the queue directory holds another queue plugin\'s messages (queue-spool\'s, for queue-journal)',
  PETREL_QUEUE_CORRUPT: 'queued data could not be read back (damaged bytes in a journal segment, a lost file); what could be read was kept',
  PETREL_GREETING_PATCH: 'the installed smtp-server changed in a way Petrel relies on',
  PETREL_TLS: 'a TLS certificate or key could not be loaded',
  PETREL_CONTROL_IN_USE: 'another Petrel runs on this data directory (its control socket answers)',
  PETREL_CONTROL_FAILED: 'a `petrel queue` request to the running server failed',
  PETREL_REDIS_PERSISTENCE: 'Redis does not persist writes durably: acknowledged mail could be lost if it crashes',
  PETREL_RUN_AS_ROOT: 'started as root with no server.user: Petrel will not serve mail as root unless told to',
  PETREL_ACCOUNT_UNKNOWN: 'server.user or server.group names no account on this system',
  PETREL_WRONG_USER: 'server.user names another account than the one Petrel was started as, and only root can switch',
  PETREL_DATA_DIR_OWNER: 'the data directory (or something in it) is not owned by the user Petrel runs as',
  PETREL_PRIVILEGE_DROP: 'switching to server.user/server.group failed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PetrelError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PetrelError';
  }
}
