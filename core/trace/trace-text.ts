import type { TraceEvent } from './trace-event.js';

/** `00:01:02.123`: the time of a trace line (UTC, like the logs). */
function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/**
 * One trace event as `petrel trace` prints it: time, connection, then the
 * line. Commands read by the server (or written by our client) carry `C:`,
 * replies `S:`; `~` marks a plugin's verdict or note, `*` the core's. With
 * `terse`, multi-line replies show their first line and handlers that had
 * no opinion (next) are left out; undefined means "print nothing".
 */
export function traceText(event: TraceEvent, options: { terse?: boolean } = {}): string | undefined {
  if (event.kind === 'lost') return `${clock(event.at)} !!! ${event.count} trace event${event.count === 1 ? '' : 's'} lost (this watcher fell behind)`;
  const head = `${clock(event.at)} [${event.conn}]${event.qid && event.side === 'client' ? ` ${event.qid}` : ''}`;
  switch (event.kind) {
    case 'open':
      return event.side === 'server'
        ? `${head} * connection from ${event.remote}${event.port ? `:${event.port}` : ''} on ${event.listener}`
        : `${head} * connecting to ${event.host} at ${event.remote}${event.port ? ` port ${event.port}` : ''}${event.domain ? ` for ${event.domain}` : ''}`;
    case 'line': {
      // From the client's side, whoever speaks first in a pair is "C".
      const client = (event.side === 'server') === (event.dir === 'in');
      const lines = event.text.split('\n');
      const shown = options.terse && lines.length > 1 ? [`${lines[0]} (+${lines.length - 1} lines)`] : lines;
      return shown.map((line) => `${head} ${client ? 'C:' : 'S:'} ${line}`).join('\n');
    }
    case 'verdict':
      if (options.terse && event.result === 'next') return undefined;
      return `${head} ~ ${event.hook} ${event.plugin}: ${event.result}${event.reply ? ` ${event.reply}` : ''} (${event.ms} ms)`;
    case 'note':
      return `${head} ${event.plugin ? `~ ${event.plugin}:` : '*'} ${event.text}`;
    case 'close':
      return `${head} * closed`;
  }
}
