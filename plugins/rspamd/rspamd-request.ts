import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { ScanFailure } from 'petrel';

/** Longer answers are not read: no legitimate verdict is this big. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * One POST to rspamd: the message streamed as the body (chunked, so the
 * spooled file is never read into memory first), the answer's text back.
 * Every way it can go wrong is a ScanFailure saying which: no connection,
 * an HTTP error, an answer cut short or too long.
 */
export async function postMessage(
  agent: http.Agent,
  url: URL,
  headers: Record<string, string | string[]>,
  body: NodeJS.ReadableStream,
  signal: AbortSignal,
): Promise<string> {
  const request = http.request(url, { method: 'POST', agent, headers, signal });
  const answer = new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    // `on`, not `once`: a second error (a reset after the answer) must not go unhandled.
    request.on('error', reject);
  });
  // A failed upload destroys the request, so it surfaces as the request's error; rspamd
  // may also answer (an error) before it has read everything, and that answer counts.
  pipeline(body, request).catch(() => undefined);
  try {
    const response = await answer;
    const text = await readAll(response);
    if (response.statusCode !== 200) throw new ScanFailure(`rspamd answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
    return text;
  } catch (error) {
    request.destroy();
    if (error instanceof ScanFailure) throw error;
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new ScanFailure('stopped');
    throw new ScanFailure(`rspamd at ${url.host}: ${describe(error)}`);
  }
}

async function readAll(response: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_ANSWER_BYTES) throw new ScanFailure(`rspamd's answer is longer than ${MAX_ANSWER_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  // Node ends the stream without an error when the connection closed before Content-Length was read.
  if (!response.complete) throw new ScanFailure('rspamd closed the connection in the middle of its answer');
  return Buffer.concat(chunks).toString('utf8');
}

function describe(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === 'ECONNRESET' || (error as Error).message === 'aborted') return 'connection closed in the middle of the answer';
  if (code === 'HPE_INVALID_CONSTANT' || code?.startsWith('HPE_')) return `not an HTTP answer (${code})`;
  return error instanceof Error ? error.message : String(error);
}
