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
  }
  /** One parsed MIME node (type 'node'), a body chunk ('body') or multipart structure ('data'). */
  export interface SplitterChunk {
    type: 'node' | 'body' | 'data';
    value?: Buffer;
    contentType?: string;
    root?: boolean;
    multipart?: string | false;
    headers?: Headers;
    getHeaders?(): Buffer;
  }
  export class Splitter extends Transform {
    constructor(options?: { ignoreEmbedded?: boolean; maxHeadSize?: number });
  }
  const mailsplit: { Headers: typeof Headers; Splitter: typeof Splitter };
  export default mailsplit;
}
