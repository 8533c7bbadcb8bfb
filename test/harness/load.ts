import type { SinkServer } from './sink-server.js';
import { SmtpTestClient } from './smtp-client.js';
import { sampleMessage } from './smtp-client.js';

export interface LoadResult {
  /** Message-IDs the server answered 250 to. */
  readonly acknowledged: string[];
  /** Messages that got no 250 (connection lost, 4xx): not the server's responsibility. */
  readonly unacknowledged: number;
}

/**
 * Sends `count` small messages, each with a unique Message-ID
 * `<load-N@load.test>`, over `concurrency` connections, reconnecting after
 * errors (a server that is being killed and restarted) until `stop()` says
 * so or every message was tried (`connectionPerMessage`: each on a
 * connection of its own, so that connections spread over the processes of a
 * server with workers). Only a 250 counts as acknowledged;
 * `acknowledged` grows as 250s come, for tests that act after so many.
 */
export function sendLoad(
  port: () => number,
  options: { count: number; concurrency: number; to: string; from?: string; pauseMs?: number; connectionPerMessage?: boolean },
): { done: Promise<LoadResult>; stop: () => void; acknowledged: readonly string[] } {
  let next = 0;
  let stopped = false;
  const acknowledged: string[] = [];
  let unacknowledged = 0;
  const worker = async () => {
    let client: SmtpTestClient | undefined;
    while (!stopped && next < options.count) {
      const messageId = `<load-${next++}@load.test>`;
      try {
        client ??= await SmtpTestClient.ready(port());
        const reply = await client.sendMail(options.from ?? 'load@origin.test', [options.to], sampleMessage({ messageId, subject: messageId }));
        if (reply.code === 250) acknowledged.push(messageId);
        else unacknowledged++;
        if (options.connectionPerMessage) {
          await client.quit().catch(() => undefined);
          client = undefined;
        }
      } catch {
        unacknowledged++;
        client?.close();
        client = undefined;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
    await client?.quit().catch(() => undefined);
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, worker)).then(() => ({ acknowledged, unacknowledged }));
  return { done, stop: () => { stopped = true; }, acknowledged };
}

/** Message-ID → how many times the sink got it. */
export function countById(messages: readonly { data: Buffer }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of messages) {
    const id = /^Message-ID: (<[^>]+>)/im.exec(message.data.toString('utf8'))?.[1] ?? '(none)';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Waits until every acknowledged Message-ID reached the sink; the error names those missing. */
export async function allArrive(sink: SinkServer, acked: ReadonlySet<string>, timeoutMs: number): Promise<void> {
  await sink.waitUntil((messages) => {
    const seen = countById(messages);
    return [...acked].every((id) => seen.has(id));
  }, timeoutMs, `all ${acked.size} acknowledged messages at the sink`).catch((error: Error) => {
    const seen = countById(sink.messages);
    const missing = [...acked].filter((id) => !seen.has(id));
    throw new Error(`${error.message}; missing ${missing.length}: ${missing.slice(0, 10).join(' ')}`);
  });
}

/** Message-ID → the EHLO names of whoever delivered each arrival of it, in order. */
export function deliverersById(messages: readonly { data: Buffer; helo: string }[]): Map<string, string[]> {
  const deliveredBy = new Map<string, string[]>();
  for (const message of messages) {
    const id = /^Message-ID: (<[^>]+>)/im.exec(message.data.toString())![1];
    deliveredBy.set(id, [...(deliveredBy.get(id) ?? []), message.helo]);
  }
  return deliveredBy;
}
