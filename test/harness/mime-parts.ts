import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Headers, Splitter, type SplitterChunk } from 'mailsplit';

/** One leaf of a MIME message: its content type, raw header block and body, and the body decoded. */
export interface MimePart {
  readonly contentType: string;
  /** Content-Transfer-Encoding, lower case; '' when there is none. */
  readonly encoding: string;
  readonly charset?: string;
  readonly headers: string;
  /** The body as it travels (transfer encoding not decoded). */
  readonly body: string;
  /** The body with its transfer encoding (base64, quoted-printable) decoded by mailsplit. */
  readonly decoded: Buffer;
}

export interface ParsedMessage {
  /** The root header block as text. */
  readonly headers: string;
  readonly contentType: string;
  /** The leaves in order; message/rfc822 parts are kept whole, not parsed further (parse their `decoded` again). */
  readonly parts: readonly MimePart[];
}

interface Collected {
  contentType: string;
  encoding: string;
  charset: string | false;
  headers: string;
  body: Buffer[];
  decoded: Buffer[];
  decoder?: Transform;
  multipart: boolean;
}

/** Splits a message into its MIME parts with mailsplit, for tests that read DSNs and converted messages. */
export async function parseMime(data: Buffer): Promise<ParsedMessage> {
  const nodes: Collected[] = [];
  const finish = async (node: Collected | undefined) => {
    if (!node?.decoder) return;
    const decoder = node.decoder;
    const ended = new Promise((resolve, reject) => decoder.on('end', resolve).on('error', reject));
    decoder.end();
    await ended;
  };
  await pipeline(
    Readable.from([data]),
    new Splitter({ ignoreEmbedded: true }),
    new Writable({
      objectMode: true,
      write(chunk: SplitterChunk, _encoding, done) {
        const last = nodes[nodes.length - 1];
        if (chunk.type === 'node') {
          const node: Collected = {
            contentType: chunk.contentType || 'text/plain',
            encoding: chunk.encoding,
            charset: chunk.charset,
            headers: chunk.getHeaders().toString('utf8'),
            body: [],
            decoded: [],
            multipart: Boolean(chunk.multipart),
          };
          if (!node.multipart) {
            node.decoder = chunk.getDecoder();
            node.decoder.on('data', (decoded: Buffer) => node.decoded.push(decoded));
          }
          finish(last).then(() => {
            nodes.push(node);
            done();
          }, done);
          return;
        }
        if (chunk.type === 'body' && chunk.value && last) {
          last.body.push(chunk.value);
          last.decoder?.write(chunk.value);
        }
        done();
      },
      final(done) {
        finish(nodes[nodes.length - 1]).then(() => done(), done);
      },
    }),
  );
  const [root] = nodes;
  return {
    headers: root?.headers ?? '',
    contentType: root?.contentType ?? '',
    parts: nodes
      .filter((node) => !node.multipart)
      .map((node) => ({
        contentType: node.contentType,
        encoding: node.encoding,
        ...(node.charset ? { charset: node.charset } : {}),
        headers: node.headers,
        body: Buffer.concat(node.body).toString('utf8'),
        decoded: Buffer.concat(node.decoded),
      })),
  };
}

/** The fields of one block of a message/delivery-status part, by lower-case name. */
export type StatusFields = Readonly<Record<string, string>>;

/**
 * The message/delivery-status part of a DSN (RFC 3464 2.1): the per-message
 * block, then one block per recipient; each block is header fields, parsed
 * by mailsplit.
 */
export function deliveryStatus(dsn: ParsedMessage): { readonly message: StatusFields; readonly recipients: StatusFields[] } {
  const part = dsn.parts.find((p) => p.contentType === 'message/delivery-status');
  if (!part) throw new Error(`the DSN has no message/delivery-status part (parts: ${dsn.parts.map((p) => p.contentType).join(', ')})`);
  const blocks = part.decoded
    .toString('utf8')
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const headers = new Headers(`${block}\r\n\r\n`);
      return Object.fromEntries(headers.getList().map(({ key }) => [key, headers.getFirst(key)]));
    });
  const [message, ...recipients] = blocks;
  return { message: message ?? {}, recipients };
}
