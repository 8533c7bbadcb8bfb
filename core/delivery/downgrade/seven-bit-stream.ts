import { PassThrough, pipeline, type Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Joiner, Splitter, type Headers, type MimeNode, type SplitterChunk } from 'mailsplit';
import { Encoder as Base64Encoder } from 'nodemailer/lib/base64';
import { Encoder as QuotedPrintableEncoder } from 'nodemailer/lib/qp';
import { feed } from './feed.js';
import { SPLIT_OPTIONS, type PartChange, type SevenBitPlan } from './seven-bit-plan.js';

/**
 * The message converted to 7-bit as `plan` (seven-bit-plan.ts) says: split
 * into MIME nodes by mailsplit, the planned nodes re-encoded by nodemailer's
 * quoted-printable and base64 encoders (an embedded message converted the
 * same way, recursively), joined back by mailsplit. Every other byte is
 * passed on as it was, so the conversion is the same on every call (a
 * signature over one copy holds for the next).
 */
export function toSevenBit(message: Readable, plan: SevenBitPlan): Readable {
  // pipeline() destroys every stage with the first error, so a reader of the result sees it.
  return pipeline(message, new Splitter(SPLIT_OPTIONS), new PlannedParts(plan), new Joiner(), () => undefined);
}

/** Where the body of a node being converted goes, and when its converted form has all been passed on. */
interface Conversion {
  readonly input: Writable;
  readonly done: Promise<void>;
}

class PlannedParts extends Transform {
  #position = -1;
  #conversion: Conversion | undefined;

  constructor(private readonly plan: SevenBitPlan) {
    super({ objectMode: true });
  }

  override _transform(chunk: SplitterChunk, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#take(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#endConversion().then(() => callback(), callback);
  }

  async #take(chunk: SplitterChunk): Promise<void> {
    if (chunk.type === 'body' && this.#conversion) {
      if (chunk.value) await feed(this.#conversion.input, chunk.value);
      return;
    }
    await this.#endConversion();
    if (chunk.type === 'node') {
      this.#position++;
      const change = this.plan.get(this.#position);
      if (change) this.#conversion = this.#apply(chunk, change);
    }
    this.push(chunk);
  }

  async #endConversion(): Promise<void> {
    const conversion = this.#conversion;
    this.#conversion = undefined;
    if (!conversion) return;
    conversion.input.end();
    await conversion.done;
  }

  /** Rewrites the node's headers now (before the Joiner writes them); returns where its body is converted, if it is. */
  #apply(node: MimeNode, change: PartChange): Conversion | undefined {
    if (change.kind === 'relabel') {
      setField(node.headers, 'Content-Transfer-Encoding', '7bit');
      return undefined;
    }
    if (change.kind === 'embedded') {
      if (change.relabel) setField(node.headers, 'Content-Transfer-Encoding', '7bit');
      const input = new PassThrough();
      return this.#emitting(input, toSevenBit(input, change.plan));
    }
    if (change.mimeHeaders) setField(node.headers, 'MIME-Version', '1.0');
    if (change.charset) {
      if (node.headers.hasHeader('Content-Type')) node.setCharset(change.charset);
      else setField(node.headers, 'Content-Type', `text/plain; charset=${change.charset}`);
    }
    setField(node.headers, 'Content-Transfer-Encoding', change.encoding);
    const encoder = change.encoding === 'base64' ? new Base64Encoder() : new QuotedPrintableEncoder();
    return this.#emitting(encoder, encoder);
  }

  /** What comes out of `output` is passed on as the body of the node being converted. */
  #emitting(input: Writable, output: Readable): Conversion {
    output.on('data', (value: Buffer | string) => this.push({ type: 'body', value: Buffer.from(value) }));
    const done = finished(output);
    done.catch(() => undefined); // awaited at the end of the node; an early failure must not go unhandled meanwhile
    return { input, done };
  }
}

/** Replaces a header field where it is, or adds it at the end of the block (mailsplit's update() would put a new one first). */
function setField(headers: Headers, key: string, value: string): void {
  if (headers.hasHeader(key)) headers.update(key, value);
  else headers.add(key, value, headers.getList().length);
}
