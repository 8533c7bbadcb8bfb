import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../core/log/logger.js';

export type LogLine = Record<string, unknown> & { level: string; msg?: string };

/** A logger whose JSON lines are kept in memory, so tests can assert what was logged. */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;

  constructor(level: 'debug' | 'info' | 'trace' = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const text of chunk.toString('utf8').split('\n')) {
          if (text.trim() !== '') this.lines.push(JSON.parse(text) as LogLine);
        }
        done();
      },
    });
    this.logger = createLogger({ level, destination: sink });
  }

  /** Lines whose fields include all of `fields`. */
  find(fields: Record<string, unknown>): LogLine[] {
    return this.lines.filter((line) => Object.entries(fields).every(([key, value]) => line[key] === value));
  }
}
