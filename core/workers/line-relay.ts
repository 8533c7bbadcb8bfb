import type { Readable, Writable } from 'node:stream';

/**
 * Copies a worker's log (its stdout) to the primary's, whole lines at a
 * time. Workers write JSON lines to pipes of their own and only the primary
 * writes to the real stdout, so lines of two workers never interleave
 * mid-line (a write to a shared pipe is atomic only up to PIPE_BUF).
 */
export function relayLines(from: Readable, to: Writable): void {
  let partial = '';
  from.setEncoding('utf8');
  const write = (text: string) => {
    if (text !== '' && !to.write(text)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  };
  from.on('data', (chunk: string) => {
    const text = partial + chunk;
    const end = text.lastIndexOf('\n');
    partial = end < 0 ? text : text.slice(end + 1);
    if (end >= 0) write(text.slice(0, end + 1));
  });
  from.on('end', () => {
    if (partial !== '') write(`${partial}\n`);
    partial = '';
  });
}
