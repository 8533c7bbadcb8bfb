/**
 * A line writer on one of the CLI's streams. When the reader goes away
 * (`petrel queue list | head`), writing fails with EPIPE; that is not the
 * command's failure, so the writer goes quiet and the command runs to its
 * end (closing the queue it opened) instead of dying on an unhandled
 * 'error' event. Node ignores SIGPIPE, so this is the only way it shows.
 *
 * The listener guards every write to the stream, including the ones made
 * with `stream.write` directly.
 */
export function lineWriter(stream: NodeJS.WritableStream, prefix = ''): (line: string) => void {
  let open = true;
  stream.on('error', () => {
    // EPIPE, or the terminal went away (EIO): either way nobody reads any more.
    open = false;
  });
  return (line) => {
    if (open) stream.write(`${prefix}${line}\n`);
  };
}
