import type { QueuedMessage } from '../../core/queue/contract.js';
import type { TestServer } from './test-server.js';

/**
 * Polls `check` until it gives a value (anything but undefined or false)
 * and returns it; fails naming `what` after `timeoutMs`. For state that
 * changes in the background: the queue after a delivery attempt, a file a
 * delivery writes.
 */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves once the server's queue is empty (every message delivered or bounced). */
export async function queueEmpty(server: TestServer, timeoutMs = 10_000): Promise<void> {
  await eventually(async () => (await server.petrel.queue.list()).length === 0, 'the queue to be empty', timeoutMs).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await server.petrel.queue.list())}`);
  });
}

/** The queued message once its first delivery attempt is recorded (fails with the queue record and its log lines). */
export async function afterFirstAttempt(server: TestServer, id: string): Promise<QueuedMessage> {
  return eventually(async () => {
    const message = await server.petrel.queue.inspect(id);
    return message && message.attempts >= 1 ? message : undefined;
  }, `the first delivery attempt of ${id}`).catch(async (error: Error) => {
    const lines = server.logs.lines.filter((line) => line.qid === id || line.level === 'warn' || line.level === 'error');
    throw new Error(`${error.message}: ${JSON.stringify(await server.petrel.queue.inspect(id))}\n${lines.map((line) => JSON.stringify(line)).join('\n')}`);
  });
}
