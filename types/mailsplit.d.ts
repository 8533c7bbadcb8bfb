// mailsplit ships no type declarations; this covers the part Petrel uses.
declare module 'mailsplit' {
  import type { Transform } from 'node:stream';
  export interface HeaderLine {
    key: string;
    line: string;
  }
  export class Headers {
    constructor(headers: Buffer | string | HeaderLine[]);
    hasHeader(key: string): boolean;
    get(key: string): string[];
    getFirst(key: string): string;
    getList(): HeaderLine[];
    add(key: string, value: string | Buffer | number, index?: number): void;
    addFormatted(key: string, line: string, index?: number): void;
    remove(key: string): void;
    update(key: string, value: string, relativeIndex?: number): void;
    build(lineEnd?: string): Buffer;
    changed: boolean;
    /** A first line taken for an mbox separator (`From ...`) or an HTTP request (`POST ...`): out of the list, written first. */
    mbox: string | false;
    http: string | false;
  }
  /** One MIME node as the Splitter emits it (a 'node' chunk): its header block, editable until a Joiner writes it. */
  export interface MimeNode {
    type: 'node';
    /** The message's own header block (not a part's). */
    root: boolean;
    /** Lower case; text/plain when the node has no Content-Type. */
    contentType: string | false;
    charset: string | false;
    /** Content-Transfer-Encoding, lower case; '' when there is none. */
    encoding: string;
    /** The subtype of a multipart node ('mixed'), else false. */
    multipart: string | false;
    headers: Headers;
    getHeaders(): Buffer;
    /** Decodes the node's body (base64, quoted-printable, or as it is). */
    getDecoder(): Transform;
    setCharset(charset: string): void;
  }
  /** A leaf's body ('body') or the multipart structure between parts: boundaries, preamble, epilogue ('data'). */
  export interface SplitterData {
    type: 'body' | 'data';
    value?: Buffer;
  }
  export type SplitterChunk = MimeNode | SplitterData;
  /** Bytes in, SplitterChunk objects out. */
  export class Splitter extends Transform {
    constructor(options?: { ignoreEmbedded?: boolean; maxHeadSize?: number });
  }
  /** SplitterChunk objects in, the message's bytes out. */
  export class Joiner extends Transform {
    constructor();
  }
  const mailsplit: { Headers: typeof Headers; Splitter: typeof Splitter; Joiner: typeof Joiner };
  export default mailsplit;
}
