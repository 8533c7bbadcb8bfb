import type { Writable } from 'node:stream';

/**
 * Writes `chunk` and waits while `stream` asks for a pause. A stream that
 * was destroyed (its reader failed) takes nothing more and never drains:
 * that failure is reported where the reader is awaited, not here.
 */
export async function feed(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed || stream.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
