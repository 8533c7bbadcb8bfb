import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { QueueOperator } from '../control/queue-operations.js';
import type { PetrelConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { HistoryStore } from '../history/history-store.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { QueuedMessage, QueueFilter, QueueState } from '../queue/contract.js';
import { isQueueId } from '../queue/queue-id.js';
import { parseListCursor } from '../queue/queue-filter.js';
import { withTimeout } from '../hooks/runner.js';
import { listenFailure } from '../util/listen-failure.js';
import { ConnectionGate } from '../util/connection-gate.js';
import { filterFromQuery } from '../trace/trace-filter.js';
import type { TraceHub } from '../trace/trace-hub.js';
import { AdminAuth, AuthError } from './admin-auth.js';
import { CONSOLE_HEADERS, serveConsole } from './console-assets.js';
import { redact } from './redact.js';
import { streamTrace } from './trace-stream.js';

export interface AdminDeps {
  readonly config: () => PetrelConfig;
  readonly metrics: Metrics;
  readonly queueOperations: () => QueueOperator;
  readonly plugins: () => readonly { name: string; version: string; options: unknown }[];
  /** Checks behind /ready: each resolves or rejects (with the reason). */
  readonly readiness: () => Record<string, Promise<unknown>>;
  readonly reload: () => Promise<unknown>;
  readonly log: Logger;
  /** Live traces (`/api/trace/server`, `/api/trace/client`). */
  readonly trace: TraceHub;
  /** Message histories and recent activity; undefined with history off. */
  readonly history?: HistoryStore;
  /** Serve the web console at / (admin.console; only with a token). */
  readonly console: boolean;
}

/** Who may use what: the bearer token of /api/* and whether /metrics needs it too. */
export interface AdminAccess {
  readonly token: string | undefined;
  readonly metricsNeedToken: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATES: readonly QueueState[] = ['active', 'deferred', 'held'];
const READY_TIMEOUT_MS = 3000;
const MAX_BODY_BYTES = 256 * 1024;
/** Paths of the console's pages: each is its one page, which routes in the browser. */
const CONSOLE_PAGE = /^\/(?:$|console\/|queue$|sessions$|messages\/)/;
const BULK_ACTIONS = ['hold', 'release', 'retry', 'bounce', 'delete'] as const;
type BulkAction = (typeof BULK_ACTIONS)[number];

/**
 * The admin listener (loopback by default): Prometheus metrics, liveness and
 * readiness for orchestrators, a JSON API for the queue, message histories,
 * live traces (server-sent events), the plugins and the config in force, and
 * the web console built on that API. /health and /ready are open (they
 * reveal no mail); /metrics too unless `admin.metricsAuth: token` (its labels
 * name listeners, plugins and destination domains); everything under /api
 * needs the admin token (admin-auth.ts: a bearer header, or the console's
 * sign-in cookie). The queue operations are the ones `petrel queue` runs
 * (QueueOperations).
 * docs/admin-api.yaml is the OpenAPI description.
 */
export class AdminServer {
  readonly #server: Server;
  readonly #gate: ConnectionGate;
  readonly #auth: AdminAuth;

  constructor(
    private readonly access: AdminAccess,
    private readonly deps: AdminDeps,
  ) {
    this.#auth = new AdminAuth(access.token);
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        const status = error instanceof HttpError || error instanceof AuthError ? error.status : 500;
        if (status === 500) deps.log.error({ err: error, url: request.url }, 'admin request failed');
        const retryAfter: Record<string, string> = error instanceof AuthError && error.retryAfter !== undefined ? { 'retry-after': String(error.retryAfter) } : {};
        send(response, status, { error: (error as Error).message }, retryAfter);
      });
    });
    // Bound with the SMTP ports (perhaps as root), answering once Petrel has started; http wants sockets reading.
    this.#gate = new ConnectionGate(this.#server, { resume: true });
  }

  /** Answers requests from now on, those that waited since `listen()` first. */
  open(): void {
    this.#gate.open();
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', (error) => reject(listenFailure('the admin listener', host, port, error)));
      this.#server.listen(port, host, () => {
        const address = this.#server.address() as AddressInfo;
        this.deps.log.info({ host: address.address, port: address.port }, `admin API listening on ${address.address}:${address.port}`);
        resolve(address);
      });
    });
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  close(): Promise<void> {
    this.#gate.dropHeld();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://admin');
    const method = request.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (method === 'GET' && path === '/health') return send(response, 200, { status: 'ok' });
    if (method === 'GET' && path === '/ready') return this.#ready(response);
    if (method === 'GET' && path === '/metrics') {
      if (this.access.metricsNeedToken) this.#auth.check(request);
      await this.#refreshQueueGauge();
      const { contentType, body } = await this.deps.metrics.exposition();
      response.writeHead(200, { 'content-type': contentType });
      response.end(body);
      return;
    }
    if (method === 'GET' && this.deps.console && this.#auth.enabled && CONSOLE_PAGE.test(path) && (await serveConsole(path, response))) return;
    if (!path.startsWith('/api/')) throw new HttpError(404, `no route ${method} ${path}`);
    if (path === '/api/session') return this.#session(method, request, response);
    this.#auth.check(request);
    if (method === 'GET' && (path === '/api/trace/server' || path === '/api/trace/client')) {
      return this.#trace(path === '/api/trace/server' ? 'server' : 'client', url.searchParams, request, response);
    }
    const raw = /^\/api\/queue\/([^/]+)\/raw$/.exec(path);
    if (method === 'GET' && raw) return this.#raw(raw[1], response);
    const body = method === 'POST' ? await readJson(request) : undefined;
    const result = await this.#api(method, path.slice(4), url.searchParams, body);
    send(response, 200, result ?? null);
  }

  /** POST signs the console in (sets its cookie), DELETE signs it out, GET says whether it is signed in. */
  async #session(method: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (method === 'POST') {
      const body = (await readJson(request)) as { token?: unknown } | undefined;
      this.#auth.signIn(body?.token, request, response);
      return send(response, 200, { signedIn: true });
    }
    if (method === 'DELETE') {
      this.#auth.signOut(request, response);
      return send(response, 200, { signedIn: false });
    }
    if (method === 'GET') {
      this.#auth.check(request);
      return send(response, 200, { signedIn: true });
    }
    throw new HttpError(404, `no route ${method} /api/session`);
  }

  #trace(side: 'server' | 'client', query: URLSearchParams, request: IncomingMessage, response: ServerResponse): void {
    let filter;
    try {
      filter = filterFromQuery(side, query);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
    const buffer = query.get('buffer');
    streamTrace(this.deps.trace, filter, buffer === null ? undefined : Number(buffer) || undefined, request, response);
  }

  /** The message as stored (header block, then body), for the console's "raw message". */
  async #raw(id: string, response: ServerResponse): Promise<void> {
    if (!isQueueId(id)) throw new HttpError(400, `"${id}" is not a queue id`);
    const stream = await this.deps.queueOperations().raw(id);
    if (!stream) throw new HttpError(404, `no message ${id} in the queue`);
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...CONSOLE_HEADERS });
    await pipeline(stream, response).catch(() => response.destroy());
  }

  async #api(method: string, path: string, query: URLSearchParams, body: unknown): Promise<unknown> {
    const ops = () => this.deps.queueOperations();
    if (method === 'GET' && path === '/trace/watchers') return this.deps.trace.watchers();
    if (method === 'GET' && path === '/activity') return this.#activity();
    if (method === 'GET' && path === '/why') return this.#why(query);
    if (method === 'POST' && path === '/queue/bulk') return this.#bulk(body);
    if (method === 'GET' && path === '/plugins') {
      return this.deps.plugins().map((p) => ({ name: p.name, version: p.version, options: redact(p.options) }));
    }
    if (method === 'GET' && path === '/config') return redact(this.deps.config());
    if (method === 'POST' && path === '/reload') return this.deps.reload();
    if (method === 'GET' && path === '/queue') return search(await ops().list(filterFrom(query)), query.get('q'));
    if (method === 'GET' && path === '/queue/stats') return ops().stats();
    if (method === 'POST' && path === '/queue/retry-all') return { retried: await ops().retry('all') };
    const match = /^\/queue\/([^/]+)(?:\/(retry|hold|release|bounce))?$/.exec(path);
    if (match) {
      const [, id, action] = match;
      if (!isQueueId(id)) throw new HttpError(400, `"${id}" is not a queue id`);
      const found = (value: unknown) => {
        if (value === undefined || value === false || value === 0) throw new HttpError(404, `no message ${id} in the queue`);
        return value;
      };
      if (method === 'GET' && !action) return found(await ops().show(id));
      if (method === 'DELETE' && !action) return { deleted: found(await ops().delete(id)) };
      if (method === 'POST' && action === 'retry') return { retried: found(await ops().retry(id)) };
      if (method === 'POST' && action === 'hold') return { held: found(await ops().hold(id)) };
      if (method === 'POST' && action === 'release') return { released: found(await ops().release(id)) };
      if (method === 'POST' && action === 'bounce') return { bounced: found(await ops().bounce(id)) };
    }
    throw new HttpError(404, `no route ${method} /api${path}`);
  }

  /** The overview: messages per minute, top deferral reasons, the queue by state and destination. */
  async #activity(): Promise<unknown> {
    const activity = this.deps.history?.activity.snapshot() ?? { minutes: [], deferrals: [] };
    return { ...activity, queue: await this.deps.queueOperations().stats() };
  }

  async #why(query: URLSearchParams): Promise<unknown> {
    const text = query.get('q') ?? '';
    if (text.trim() === '') throw new HttpError(400, 'q: a queue id, Message-ID, sender or recipient');
    const since = query.get('since');
    const sinceMs = since === null ? undefined : parseDuration(since);
    if (since !== null && sinceMs === undefined) throw new HttpError(400, 'since must be a duration like 2h or 3d');
    const limit = Number(query.get('limit') ?? 20);
    return this.deps.queueOperations().why(text, { since: sinceMs === undefined ? undefined : Date.now() - sinceMs, limit: Number.isFinite(limit) ? limit : 20 });
  }

  /** One action on many messages (the console's bulk buttons): each id's own answer. */
  async #bulk(body: unknown): Promise<unknown> {
    const { action, ids } = (body ?? {}) as { action?: unknown; ids?: unknown };
    if (typeof action !== 'string' || !BULK_ACTIONS.includes(action as BulkAction)) throw new HttpError(400, `action must be one of ${BULK_ACTIONS.join(', ')}`);
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 1000 || !ids.every((id) => typeof id === 'string' && isQueueId(id))) {
      throw new HttpError(400, 'ids must be 1 to 1000 queue ids');
    }
    const ops = this.deps.queueOperations();
    const results: Record<string, unknown> = {};
    for (const id of ids as string[]) {
      switch (action as BulkAction) {
        case 'hold':
          results[id] = await ops.hold(id);
          break;
        case 'release':
          results[id] = await ops.release(id);
          break;
        case 'retry':
          results[id] = (await ops.retry(id)) > 0;
          break;
        case 'bounce':
          results[id] = await ops.bounce(id);
          break;
        case 'delete':
          results[id] = await ops.delete(id);
          break;
      }
    }
    return { action, results };
  }

  async #ready(response: ServerResponse): Promise<void> {
    const checks = this.deps.readiness();
    const results: Record<string, string> = {};
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check, READY_TIMEOUT_MS);
          results[name] = 'ok';
        } catch (error) {
          results[name] = `failing: ${(error as Error).message}`;
        }
      }),
    );
    const ready = Object.values(results).every((r) => r === 'ok');
    send(response, ready ? 200 : 503, { ready, checks: results });
  }

  /** Queue depth is read at scrape time, so /metrics always shows the queue as it is. */
  async #refreshQueueGauge(): Promise<void> {
    try {
      const stats = await this.deps.queueOperations().stats();
      for (const state of STATES) this.deps.metrics.queueDepth.set({ state }, stats.states[state]);
    } catch {
      // The queue is unreachable; /ready says so, the gauge keeps its last value.
    }
  }
}

function filterFrom(query: URLSearchParams): QueueFilter {
  const state = query.get('state') ?? undefined;
  if (state !== undefined && !STATES.includes(state as QueueState)) throw new HttpError(400, `state must be one of ${STATES.join(', ')}`);
  const olderThan = query.get('olderThan');
  const olderThanMs = olderThan === null ? undefined : parseDuration(olderThan);
  if (olderThan !== null && olderThanMs === undefined) throw new HttpError(400, 'olderThan must be a duration like 30m or 2h');
  const limit = query.get('limit');
  const after = query.get('after') ?? undefined;
  if (after !== undefined) {
    try {
      parseListCursor(after);
    } catch (error) {
      throw new HttpError(400, (error as Error).message);
    }
  }
  return {
    after,
    state: state as QueueState | undefined,
    domain: query.get('domain') ?? undefined,
    sender: query.get('sender') ?? undefined,
    olderThanMs,
    limit: limit === null ? undefined : Number(limit),
  };
}

/** The console's search box: messages whose id, sender, a recipient or Message-ID contains the text. */
function search(messages: QueuedMessage[], text: string | null): QueuedMessage[] {
  const needle = text?.trim().toLowerCase();
  if (!needle) return messages;
  return messages.filter(
    (m) =>
      m.id.includes(needle) ||
      m.envelope.from.toLowerCase().includes(needle) ||
      (m.messageId ?? '').toLowerCase().includes(needle) ||
      m.recipients.some((r) => r.address.toLowerCase().includes(needle)),
  );
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'the request body is not JSON');
  }
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(`${JSON.stringify(body, null, 2)}\n`);
}
