import { PassThrough, type Readable, Writable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { pipeline } from 'node:stream/promises';
import { Splitter, type MimeNode, type SplitterChunk } from 'mailsplit';
import { feed } from './feed.js';

/**
 * What has to change in one MIME node so that the message is 7-bit:
 *
 * - `encode`: a leaf with 8-bit content gets a new Content-Transfer-Encoding
 *   (quoted-printable for text, base64 for the rest); a text part that named
 *   no charset gets one (`utf-8` when its bytes are UTF-8, else RFC 1428's
 *   `unknown-8bit`), and a message without MIME-Version gets MIME headers;
 * - `relabel`: a multipart or message/rfc822 labelled 8bit/binary whose
 *   content will be 7-bit: its label becomes 7bit;
 * - `embedded`: a message/rfc822 part whose inner message needs changes of
 *   its own (RFC 2045 6.4 forbids encoding a message part as a whole).
 */
export type PartChange =
  | { readonly kind: 'encode'; readonly encoding: 'quoted-printable' | 'base64'; readonly charset?: string; readonly mimeHeaders: boolean }
  | { readonly kind: 'relabel' }
  | { readonly kind: 'embedded'; readonly plan: SevenBitPlan; readonly relabel: boolean };

/**
 * The changes by position of the node in the message: 0 is the message's
 * own header block, then every node in the order mailsplit's Splitter (with
 * `ignoreEmbedded`) emits them. Empty: the message is 7-bit already.
 */
export type SevenBitPlan = ReadonlyMap<number, PartChange>;

/** Why a message cannot be made 7-bit: 8-bit bytes where no transfer encoding can reach (a header field, a multipart preamble). */
export class NotConvertible extends Error {
  override readonly name = 'NotConvertible';
}

/** How mailsplit is asked to split, by the planner and by the converter alike (the node positions must agree). */
export const SPLIT_OPTIONS = { ignoreEmbedded: true } as const;

/**
 * Reads a message once and says what must change to send it to a server
 * without 8BITMIME (RFC 6152 3), before any byte is sent: the converter
 * (seven-bit-stream.ts) needs to know a part's new headers before its body,
 * and a message that cannot be converted must bounce, not fail halfway
 * through DATA. Rejects with NotConvertible.
 */
export async function planSevenBit(message: Readable): Promise<SevenBitPlan> {
  const scan = new MessageScan();
  await pipeline(
    message,
    new Splitter(SPLIT_OPTIONS),
    new Writable({
      objectMode: true,
      write: (chunk: SplitterChunk, _encoding, done) => scan.take(chunk).then(() => done(), done),
      final: (done) => scan.end().then(() => done(), done),
    }),
  );
  return scan.changes;
}

const EIGHT_BIT_LABELS = new Set(['8bit', 'binary']);
const ENCODED_LABELS = new Set(['base64', 'quoted-printable']);

class MessageScan {
  readonly changes = new Map<number, PartChange>();
  #position = -1;
  #leaf: LeafScan | undefined;

  async take(chunk: SplitterChunk): Promise<void> {
    if (chunk.type === 'node') return this.#node(chunk);
    if (!chunk.value) return;
    if (chunk.type === 'body' && this.#leaf) return this.#leaf.add(chunk.value);
    if (hasEightBit(chunk.value)) throw new NotConvertible('8-bit bytes outside any MIME part (a multipart preamble or epilogue)');
  }

  async end(): Promise<void> {
    await this.#finishLeaf();
  }

  async #node(node: MimeNode): Promise<void> {
    await this.#finishLeaf();
    this.#position++;
    if (hasEightBit(node.getHeaders())) {
      throw new NotConvertible(`8-bit bytes in a header field${node.root ? '' : ` of a ${node.contentType || 'MIME'} part`} (only SMTPUTF8 allows them)`);
    }
    if (node.multipart) {
      if (EIGHT_BIT_LABELS.has(node.encoding)) this.changes.set(this.#position, { kind: 'relabel' });
      return;
    }
    this.#leaf = new LeafScan(node, this.#position);
  }

  async #finishLeaf(): Promise<void> {
    const leaf = this.#leaf;
    this.#leaf = undefined;
    const change = await leaf?.finish();
    if (leaf && change) this.changes.set(leaf.position, change);
  }
}

/** One leaf's body as it streams past: does it hold 8-bit bytes, are they UTF-8, and for a message part, the inner message's own plan. */
class LeafScan {
  #eightBit = false;
  #utf8: TextDecoder | undefined;
  #validUtf8 = true;
  readonly #embedded: { readonly input: PassThrough; readonly plan: Promise<SevenBitPlan> } | undefined;

  constructor(
    private readonly node: MimeNode,
    readonly position: number,
  ) {
    const type = node.contentType || 'text/plain';
    if (type.startsWith('text/') && !node.charset) this.#utf8 = new TextDecoder('utf-8', { fatal: true });
    if (type === 'message/rfc822' && !ENCODED_LABELS.has(node.encoding)) {
      const input = new PassThrough();
      const plan = planSevenBit(input);
      plan.catch(() => undefined); // awaited in finish(); a failure must not go unhandled meanwhile
      this.#embedded = { input, plan };
    }
  }

  async add(value: Buffer): Promise<void> {
    if (!this.#eightBit && hasEightBit(value)) this.#eightBit = true;
    if (this.#utf8 && this.#validUtf8) {
      try {
        this.#utf8.decode(value, { stream: true });
      } catch {
        this.#validUtf8 = false;
      }
    }
    if (this.#embedded) await feed(this.#embedded.input, value);
  }

  async finish(): Promise<PartChange | undefined> {
    const { node } = this;
    const type = node.contentType || 'text/plain';
    const labelledEightBit = EIGHT_BIT_LABELS.has(node.encoding);
    if (this.#embedded) {
      this.#embedded.input.end();
      const plan = await this.#embedded.plan;
      if (plan.size > 0) return { kind: 'embedded', plan, relabel: labelledEightBit };
      return labelledEightBit ? { kind: 'relabel' } : undefined;
    }
    if (!this.#eightBit && !labelledEightBit) return undefined;
    if (ENCODED_LABELS.has(node.encoding)) throw new NotConvertible(`raw 8-bit bytes in a ${node.encoding} ${type} part`);
    const text = type.startsWith('text/') || type.startsWith('message/global');
    // Other message types (delivery-status, disposition-notification…) may not be encoded (RFC 2045 6.4).
    if (type.startsWith('message/') && !text) throw new NotConvertible(`8-bit content in a ${type} part, which may not be encoded`);
    if (this.#utf8 && this.#validUtf8) {
      try {
        this.#utf8.decode();
      } catch {
        this.#validUtf8 = false;
      }
    }
    const charset = this.#utf8 && this.#eightBit ? (this.#validUtf8 ? 'utf-8' : 'unknown-8bit') : undefined;
    return {
      kind: 'encode',
      encoding: text ? 'quoted-printable' : 'base64',
      ...(charset ? { charset } : {}),
      mimeHeaders: node.root && !node.headers.hasHeader('MIME-Version'),
    };
  }
}

function hasEightBit(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte >= 0x80) return true;
  return false;
}
