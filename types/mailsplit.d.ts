// mailsplit ships no type declarations; this covers the part Petrel uses.
declare module 'mailsplit' {
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
  const mailsplit: { Headers: typeof Headers };
  export default mailsplit;
}
