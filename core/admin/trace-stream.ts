import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TraceFilter } from '../trace/trace-filter.js';
import type { TraceHub } from '../trace/trace-hub.js';

/** Events written at most per write. */
const BATCH = 256;
const KEEPALIVE_MS = 15_000;

/**
 * Streams a live trace to an HTTP client as server-sent events (one JSON
 * event per `data:` line). The watcher's bounded queue sits between the
 * sessions and the socket: events are written when the socket takes them,
 * and while the client does not read (its TCP window is full) nothing is
 * written and the queue drops what does not fit, counting it. The sessions
 * being traced never wait for this. The stream ends when the client goes
 * away, or after the one session an only-one trace waited for.
 */
export function streamTrace(hub: TraceHub, filter: TraceFilter, capacity: number | undefined, request: IncomingMessage, response: ServerResponse): void {
  const watcher = hub.watch(filter, capacity);
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  response.write(`: petrel trace, watcher ${watcher.id}\n\n`);
  let scheduled = false;
  let blocked = false;
  let ended = false;

  const finish = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepalive);
    hub.unwatch(watcher);
    response.end();
  };
  const flush = () => {
    scheduled = false;
    while (!blocked && !ended) {
      const events = watcher.take(BATCH);
      if (events.length === 0) break;
      if (!response.write(events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join(''))) {
        blocked = true;
        response.once('drain', () => {
          blocked = false;
          schedule();
        });
      }
    }
    if (watcher.done) finish();
  };
  const schedule = () => {
    if (scheduled || blocked || ended) return;
    scheduled = true;
    setImmediate(flush);
  };
  const keepalive = setInterval(() => {
    if (!blocked && !ended) response.write(': keep-alive\n\n');
  }, KEEPALIVE_MS);
  keepalive.unref();
  watcher.onEvent(schedule);
  request.on('close', finish);
  response.on('close', finish);
}
