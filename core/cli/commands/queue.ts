import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { controlSocketPath, type QueueRequest } from '../../control/control-protocol.js';
import { sendControlRequest } from '../../control/control-client.js';
import type { QueueOperations, QueueStats, ShownMessage } from '../../control/queue-operations.js';
import { loadConfigFile, type LoadedConfig } from '../../config/load.js';
import { parseDuration } from '../../config/units.js';
import { createLogger } from '../../log/logger.js';
import { makePaths, type WorkerSlot } from '../../paths.js';
import { TOKENS } from '../../di/tokens.js';
import type { Spool } from '../../spool/spool.js';
import { ClusterQueueOperations } from '../../workers/cluster-queue-operations.js';
import { workerCount, type WorkerAnswer, type WorkerRequest } from '../../workers/worker-protocol.js';
import { Petrel } from '../../petrel.js';
import { asOwnerOf } from '../../privileges/as-owner.js';
import { isQueueId } from '../../queue/queue-id.js';
import { listCursor, parseListCursor } from '../../queue/queue-filter.js';
import { stateOf, type QueuedMessage, type QueueState } from '../../queue/contract.js';
import { timelineLines } from '../../history/timeline.js';
import type { CliContext } from '../petrel.js';

const STATES: readonly QueueState[] = ['active', 'deferred', 'held'];

export const QUEUE_USAGE = 'usage: petrel queue list|show ID|retry ID|retry --all|delete ID|bounce ID|hold ID|release ID|stats [--json]';

/**
 * `petrel queue ...`, with whichever queue plugin the config names. When a
 * server runs on this config's data directory, the request goes to it over
 * its control socket (the server owns the queue); otherwise the command
 * opens the queue itself (for queue-spool this takes the queue's lock, so a
 * server cannot start meanwhile).
 */
export async function queueCommand(context: CliContext): Promise<number> {
  const [action, id] = context.args;
  const request = toRequest(action, id, context);
  if (typeof request === 'string') return context.usage(request, QUEUE_USAGE);
  return print(request, await runQueueRequest(context.configFile, request), context);
}

/** Runs a request on the running server of this config (its control socket), or on the queue and history directly when none runs. */
export async function runQueueRequest(configFile: string, request: QueueRequest): Promise<unknown> {
  const loaded = await loadConfigFile(configFile);
  const dataDir = makePaths(loaded.baseDir, loaded.config.server.dataDir).dataDir;
  const result = await sendControlRequest(controlSocketPath(dataDir), request);
  return result === undefined ? runWithoutServer(loaded, request) : result;
}

function toRequest(action: string | undefined, id: string | undefined, context: CliContext): QueueRequest | string {
  const { flags } = context;
  switch (action) {
    case 'list': {
      const state = flags.state as QueueState | undefined;
      if (state !== undefined && !STATES.includes(state)) return `unknown state "${state}" (one of ${STATES.join(', ')})`;
      let olderThanMs: number | undefined;
      if (typeof flags['older-than'] === 'string') {
        olderThanMs = parseDuration(flags['older-than']);
        if (olderThanMs === undefined) return `--older-than wants a duration like 30m, 4h or 2d, not "${flags['older-than']}"`;
      }
      let limit: number | undefined;
      if (flags.limit !== undefined) {
        limit = Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1) return `--limit wants a whole number of messages, not "${String(flags.limit)}"`;
      }
      const after = typeof flags.after === 'string' ? flags.after : undefined;
      if (after !== undefined) {
        try {
          parseListCursor(after);
        } catch (error) {
          return `--after: ${(error as Error).message}`;
        }
      }
      return { op: 'list', filter: { state, domain: flags.domain as string | undefined, sender: flags.sender as string | undefined, olderThanMs, limit, after } };
    }
    case 'stats':
      return { op: 'stats' };
    case 'retry':
      if (flags.all === true) return { op: 'retry', id: 'all' };
      return withId('retry', id, 'queue retry');
    case 'show':
    case 'hold':
    case 'release':
    case 'delete':
    case 'bounce':
      return withId(action, id, `queue ${action}`);
    case undefined:
      return 'which queue command?';
    default:
      return `unknown queue command "${action}"`;
  }
}

function withId<Op extends 'show' | 'hold' | 'release' | 'delete' | 'bounce' | 'retry'>(op: Op, id: string | undefined, command: string): QueueRequest | string {
  if (!id) return `${command}: the message ID is missing`;
  if (!isQueueId(id)) return `"${id}" is not a queue id (they look like mi5k2w3c0-9f3b1c0d2a7e4f10)`;
  return { op, id } as QueueRequest;
}

async function runWithoutServer(loaded: LoadedConfig, request: QueueRequest): Promise<unknown> {
  const count = workerCount(loaded.config.server.workers);
  if (count === 1) return runOnShare(loaded, request);
  // With server.workers each worker's share is a queue of its own: each is opened in turn and
  // the answers merged as a running server merges its workers'.
  const askAll = async (asked: WorkerRequest): Promise<WorkerAnswer[]> => {
    if (asked.op !== 'queue') throw new Error(`${asked.op} needs a running server`);
    const answers: WorkerAnswer[] = [];
    for (let index = 0; index < count; index++) {
      answers.push(
        await runOnShare(loaded, asked.request, { index, count }).then(
          (result) => ({ worker: index, ok: true, result }),
          (error: unknown) => ({ worker: index, ok: false, error: (error as Error).message }),
        ),
      );
    }
    return answers;
  };
  const histories = {
    why: async (query: string, options: { since?: number; limit?: number } = {}) =>
      (await runOnShare(loaded, { op: 'why', query, ...options })) as Awaited<ReturnType<QueueOperations['why']>>,
    show: async (id: string) => ((await runOnShare(loaded, { op: 'show', id })) ?? undefined) as ShownMessage | undefined,
  };
  return JSON.parse(JSON.stringify((await new ClusterQueueOperations(askAll, histories).execute(request)) ?? null)) as unknown;
}

/** Runs a request on one share of the queue (worker `share`'s, worker 0's or the single process's by default). */
async function runOnShare(loaded: LoadedConfig, request: QueueRequest, share?: WorkerSlot): Promise<unknown> {
  const petrel = await Petrel.build({ config: loaded, logger: createLogger({ level: 'silent' }), share });
  // Plugins are made as root (as the server makes them); the queue, spool and history are then used as the
  // data directory's owner, so nothing root makes there (a directory, a .state file, a history day) locks the server out.
  return asOwnerOf(petrel.paths.dataDir, async () => {
    try {
      await petrel.openQueue();
      // A bounce writes its DSN through the spool, as the server would.
      await mkdir(petrel.base.resolve<Spool>(TOKENS.Spool).directory, { recursive: true });
      // Through JSON, so the output is the same as from a running server.
      return JSON.parse(JSON.stringify((await petrel.queueOperations().execute(request)) ?? null)) as unknown;
    } finally {
      await petrel.stop();
    }
  });
}

function print(request: QueueRequest, result: unknown, context: CliContext): number {
  const { out } = context;
  const json = context.flags.json === true;
  if (json) out(JSON.stringify(result, null, 2));
  switch (request.op) {
    case 'list':
      if (!json) printTable(result as QueuedMessage[], out, request.filter.limit);
      return 0;
    case 'stats':
      if (!json) printStats(result as QueueStats, out);
      return 0;
    case 'show':
      if (!result) return notFound(request.id, context);
      if (!json) out(describe(result as ShownMessage));
      return 0;
    case 'retry': {
      const count = result as number;
      if (request.id !== 'all' && count === 0) return notFound(request.id, context);
      if (!json) out(`${count} message${count === 1 ? '' : 's'} scheduled for immediate delivery`);
      return 0;
    }
    case 'bounce':
      if (result === 'not-found') return notFound(request.id, context);
      if (result === 'busy') {
        context.err(`${request.id} is being delivered right now; try again in a moment`);
        return 1;
      }
      if (!json) out(`${request.id}: bounced (the sender gets a delivery status notification)`);
      return 0;
    case 'hold':
    case 'release':
    case 'delete':
      if (result !== true) return notFound(request.id, context);
      if (!json) out(`${request.id}: ${request.op === 'delete' ? 'deleted' : request.op === 'hold' ? 'on hold' : 'released'}`);
      return 0;
    case 'why':
      // `petrel why` prints its own answer (why.ts).
      return 0;
  }
}

function notFound(id: string, context: CliContext): number {
  context.err(`no message ${id} in the queue`);
  return 1;
}

function printTable(messages: readonly QueuedMessage[], out: (line: string) => void, limit: number | undefined): void {
  if (messages.length === 0) {
    out(limit === undefined ? 'queue is empty' : 'no more messages');
    return;
  }
  out(`${'ID'.padEnd(26)} ${'STATE'.padEnd(8)} ${'SIZE'.padStart(7)} ${'RECEIVED'.padEnd(20)} ${'TRIES'.padStart(5)} ${'NEXT TRY'.padEnd(20)} SENDER -> RECIPIENTS`);
  for (const m of messages) {
    const open = m.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred').map((r) => r.address);
    out(
      `${m.id.padEnd(26)} ${stateOf(m).padEnd(8)} ${String(m.size).padStart(7)} ${isoSeconds(m.receivedAt)} ${String(m.attempts).padStart(5)} ` +
        `${m.held ? '(held)'.padEnd(20) : isoSeconds(m.nextAttemptAt)} <${m.envelope.from}> -> ${open.join(', ')}`,
    );
  }
  out(`${messages.length} message${messages.length === 1 ? '' : 's'}`);
  // A full page: there may be more, from where this one ended.
  if (messages.length === limit) out(`next page: --limit ${limit} --after ${listCursor(messages[messages.length - 1])}`);
}

function printStats(stats: QueueStats, out: (line: string) => void): void {
  out(`${'STATE'.padEnd(10)} MESSAGES`);
  for (const state of STATES) out(`${state.padEnd(10)} ${stats.states[state]}`);
  if (stats.destinations.length === 0) return;
  const width = Math.max(11, ...stats.destinations.map((d) => d.destination.length));
  out('');
  out(`${'DESTINATION'.padEnd(width)} ${'MESSAGES'.padStart(8)} ${'RECIPIENTS'.padStart(10)}`);
  for (const d of stats.destinations) out(`${d.destination.padEnd(width)} ${String(d.messages).padStart(8)} ${String(d.recipients).padStart(10)}`);
}

function describe({ message: m, headers, history }: ShownMessage): string {
  const timeline = history.length > 0 ? ['history:', ...timelineLines(history).map((line) => `  ${line}`)] : [];
  if (!m) return [`${history[0]?.id ?? ''}: no longer in the queue`, ...timeline].join('\n');
  const lines = [
    `id:          ${m.id}`,
    `state:       ${stateOf(m)}`,
    `message-id:  ${m.messageId ?? '(none)'}`,
    `from:        <${m.envelope.from}>${m.envelope.dsn?.envid ? `  ENVID=${m.envelope.dsn.envid}` : ''}${m.envelope.dsn?.ret ? `  RET=${m.envelope.dsn.ret}` : ''}`,
    `size:        ${m.size} bytes`,
    `received:    ${new Date(m.receivedAt).toISOString()} from ${m.origin.remoteAddress} (${m.origin.helo ?? 'no helo'}) on ${m.origin.listener}${m.origin.user ? ` as ${m.origin.user}` : ''}${m.origin.generated ? ` [${m.origin.generated}]` : ''}`,
    `next try:    ${m.held ? '(held)' : new Date(m.nextAttemptAt).toISOString()}`,
    `attempts:    ${m.attempts}`,
    'recipients:',
    ...m.recipients.map((r) => `  ${r.address.padEnd(36)} ${r.status.padEnd(9)} attempts ${r.attempts}${r.lastReply ? `  last: ${r.lastReply}` : ''}`),
    'headers:',
    ...headers.replace(/\r\n$/, '').split('\r\n').filter((line) => line !== '').map((line) => `  ${line}`),
    ...timeline,
  ];
  return lines.join('\n');
}

/** `2026-11-28T19:15:44Z`: UTC, like the log, and saying so. */
function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
