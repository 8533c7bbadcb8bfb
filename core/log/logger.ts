import { createRequire } from 'node:module';
import { format } from 'node:util';
import { pino, type Logger as PinoLogger, type DestinationStream, type LevelWithSilent } from 'pino';
import type { PrettyOptions } from 'pino-pretty';

/** Petrel's logger: pino, one JSON object a line (or readable lines on a terminal). */
export type Logger = PinoLogger;

/** `logging.format`: auto is pretty when the lines go to a terminal, JSON otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  readonly level: LevelWithSilent;
  readonly format?: LogFormat;
  /** Where lines go; stdout when omitted. Tests pass a stream to read them. */
  readonly destination?: DestinationStream;
}

/**
 * Set by the primary of server.workers for its workers when its own stdout is
 * a terminal: a worker's stdout is a pipe to the primary, which passes its
 * lines on, so `auto` must look at the primary's.
 */
export const STDOUT_IS_TTY_ENV = 'PETREL_STDOUT_TTY';

function stdoutIsTerminal(): boolean {
  return process.stdout.isTTY === true || process.env[STDOUT_IS_TTY_ENV] === '1';
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.format === 'pretty' || (options.format === 'auto' && options.destination === undefined && stdoutIsTerminal());
  if (pretty) return pino({ level: options.level, base: { pid: process.pid } }, prettyStream(options.destination));
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

/**
 * Readable lines for a person at a terminal: local time, level, then the ids
 * that tie lines together (`[sid qid]`: the connection, the message), the
 * text and the other fields on the same line. pino-pretty runs in this
 * process, synchronously (a terminal is never the bottleneck, and nothing is
 * left unwritten at exit); it is loaded only when wanted.
 */
function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  const build = createRequire(import.meta.url)('pino-pretty') as (options: PrettyOptions) => DestinationStream;
  return build({
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,sid,qid',
    singleLine: true,
    colorize: destination === undefined && stdoutIsTerminal(),
    ...(destination ? { destination: destination as PrettyOptions['destination'] } : {}),
    messageFormat: (log, messageKey) => {
      const ids = [log.sid, log.qid].filter((id) => typeof id === 'string' && id.length > 0).join(' ');
      const message = String(log[messageKey] ?? '');
      return ids ? `[${ids}] ${message}` : message;
    },
  });
}

/** The bunyan-style logger smtp-server calls: `logger.info(fields, 'format %s', arg)`. */
export interface BunyanStyleLogger {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  fatal(...args: unknown[]): void;
}

/**
 * Wraps pino for smtp-server. smtp-server formats with util.format-style
 * placeholders, which pino only partly understands, so the text is formatted
 * here and the fields object is kept as structured fields. Its chatty
 * connection and protocol lines go one level down (info → debug) because
 * Petrel logs its own line per transaction.
 */
export function bunyanAdapter(logger: Logger): BunyanStyleLogger {
  const write = (wanted: 'trace' | 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]): void => {
      const [first, ...rest] = args;
      const level = isClientHangup((first as { err?: unknown } | undefined)?.err) ? 'debug' : wanted;
      if (!logger.isLevelEnabled(level)) return;
      if (first !== null && typeof first === 'object' && !(first instanceof Error)) {
        const { tnx, cid, ...fields } = first as Record<string, unknown>;
        logger[level]({ ...fields, tnx, sid: cid, component: 'smtp-server' }, format(...(rest as [unknown, ...unknown[]])));
      } else {
        logger[level]({ component: 'smtp-server' }, format(...(args as [unknown, ...unknown[]])));
      }
    };
  return {
    trace: write('trace'),
    debug: write('trace'),
    info: write('debug'),
    warn: write('warn'),
    error: write('warn'),
    fatal: write('error'),
  };
}

const HANGUPS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * A client that resets the connection (many do right after QUIT) is not a
 * server problem; smtp-server reports it as an error, which would put a
 * warning in the log for every such client.
 */
export function isClientHangup(error: unknown): boolean {
  return HANGUPS.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}
