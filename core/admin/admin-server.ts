import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { QueueOperations } from '../control/queue-operations.js';
import type { PetrelConfig } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { QueueFilter, QueueState } from '../queue/contract.js';
import { isQueueId } from '../queue/queue-id.js';
import { withTimeout } from '../hooks/runner.js';
import { listenFailure } from '../util/listen-failure.js';
import { ConnectionGate } from '../util/connection-gate.js';
import { redact } from './redact.js';

export interface AdminDeps {
  readonly config: () => PetrelConfig;
  readonly metrics: Metrics;
  readonly queueOperations: () => QueueOperations;
  readonly plugins: () => readonly { name: string; version: string; options: unknown }[];
  /** Checks behind /ready: each resolves or rejects (with the reason). */
  readonly readiness: () => Record<string, Promise<unknown>>;
  readonly reload: () => Promise<unknown>;
  readonly log: Logger;
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

/**
 * The admin listener (loopback by default): Prometheus metrics, liveness and
 * readiness for orchestrators, and a JSON API for the queue, the plugins and
 * the config in force. /health and /ready are open (they reveal no mail);
 * /metrics too unless `admin.metricsAuth: token` (its labels name listeners,
 * plugins and destination domains); everything under /api needs
 * `Authorization: Bearer <admin.token>`.
 * The queue operations are the ones `petrel queue` runs (QueueOperations).
 * docs/admin-api.yaml is the OpenAPI description.
 */
export class AdminServer {
  readonly #server: Server;
  readonly #gate: ConnectionGate;

  constructor(
    private readonly access: AdminAccess,
    private readonly deps: AdminDeps,
  ) {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        if (status === 500) deps.log.error({ err: error, url: request.url }, 'admin request failed');
        send(response, status, { error: (error as Error).message });
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
      if (this.access.metricsNeedToken) this.#authorize(request);
      await this.#refreshQueueGauge();
      const { contentType, body } = await this.deps.metrics.exposition();
      response.writeHead(200, { 'content-type': contentType });
      response.end(body);
      return;
    }
    if (!path.startsWith('/api/')) throw new HttpError(404, `no route ${method} ${path}`);
    this.#authorize(request);
    const result = await this.#api(method, path.slice(4), url.searchParams);
    send(response, 200, result ?? null);
  }

  async #api(method: string, path: string, query: URLSearchParams): Promise<unknown> {
    const ops = () => this.deps.queueOperations();
    if (method === 'GET' && path === '/plugins') {
      return this.deps.plugins().map((p) => ({ name: p.name, version: p.version, options: redact(p.options) }));
    }
    if (method === 'GET' && path === '/config') return redact(this.deps.config());
    if (method === 'POST' && path === '/reload') return this.deps.reload();
    if (method === 'GET' && path === '/queue') return ops().list(filterFrom(query));
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

  #authorize(request: IncomingMessage): void {
    const { token } = this.access;
    if (!token) throw new HttpError(403, 'the admin API is off: set admin.token (e.g. token: ${PETREL_ADMIN_TOKEN})');
    const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const expected = Buffer.from(token);
    const actual = Buffer.from(given);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new HttpError(401, 'missing or wrong bearer token');
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
  return {
    state: state as QueueState | undefined,
    domain: query.get('domain') ?? undefined,
    sender: query.get('sender') ?? undefined,
    olderThanMs,
    limit: limit === null ? undefined : Number(limit),
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(`${JSON.stringify(body, null, 2)}\n`);
}
