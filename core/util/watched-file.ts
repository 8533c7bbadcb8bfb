import { readFile, stat } from 'node:fs/promises';

/**
 * A file read again whenever it has changed, for data operators edit while
 * Petrel runs (users, recipient lists). Change is noticed by comparing
 * inode, size and mtime on use rather than with fs.watch: that sees edits in
 * place and replacements by rename alike, on every filesystem, and costs one
 * stat call.
 *
 * A file that fails to parse after a change keeps the last good content in
 * use (and `onError` says why); a missing file parses as empty text.
 */
export class WatchedFile<T> {
  #signature: string | undefined;
  #value: T | undefined;
  #loading: Promise<T> | undefined;

  constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly onError: (error: Error) => void = () => undefined,
  ) {}

  /** The parsed content, read again first if the file changed. Throws only if no good version was ever read. */
  current(): Promise<T> {
    this.#loading ??= this.#refresh().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #refresh(): Promise<T> {
    const signature = await signatureOf(this.path);
    if (signature === this.#signature && this.#value !== undefined) return this.#value;
    try {
      const text = signature === 'missing' ? '' : await readFile(this.path, 'utf8');
      this.#value = this.parse(text);
      this.#signature = signature;
    } catch (error) {
      if (this.#value === undefined) throw error;
      // Remember the bad version too, so the error is reported once and not on every use.
      this.#signature = signature;
      this.onError(error as Error);
    }
    return this.#value;
  }
}

async function signatureOf(path: string): Promise<string> {
  try {
    const info = await stat(path);
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
}
