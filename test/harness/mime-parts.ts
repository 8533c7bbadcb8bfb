import { Readable } from 'node:stream';
import { Splitter, type SplitterChunk } from 'mailsplit';

/** One leaf of a MIME message: its content type, raw header block and body (transfer encoding not decoded). */
export interface MimePart {
  readonly contentType: string;
  readonly headers: string;
  readonly body: string;
}

export interface ParsedMessage {
  /** The root header block as text. */
  readonly headers: string;
  readonly contentType: string;
  /** The leaves in order; message/rfc822 parts are kept whole, not parsed further. */
  readonly parts: readonly MimePart[];
}

/** Splits a message into its MIME parts with mailsplit, for tests that read DSNs. */
export async function parseMime(data: Buffer): Promise<ParsedMessage> {
  const splitter = new Splitter({ ignoreEmbedded: true });
  const nodes: { contentType: string; headers: string; body: Buffer[]; multipart: boolean }[] = [];
  const done = new Promise<void>((resolve, reject) => {
    splitter.on('data', (chunk: SplitterChunk) => {
      if (chunk.type === 'node') {
        nodes.push({ contentType: chunk.contentType ?? 'text/plain', headers: chunk.getHeaders!().toString('utf8'), body: [], multipart: Boolean(chunk.multipart) });
      } else if (chunk.type === 'body' && chunk.value) {
        nodes[nodes.length - 1]?.body.push(chunk.value);
      }
    });
    splitter.on('end', resolve);
    splitter.on('error', reject);
  });
  Readable.from([data]).pipe(splitter);
  await done;
  const [root] = nodes;
  return {
    headers: root?.headers ?? '',
    contentType: root?.contentType ?? '',
    parts: nodes.filter((node) => !node.multipart).map((node) => ({ contentType: node.contentType, headers: node.headers, body: Buffer.concat(node.body).toString('utf8') })),
  };
}
