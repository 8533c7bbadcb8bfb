import { createServer } from 'node:net';

/**
 * A loopback TCP port nothing listens on right now, for a system whose
 * listening port must be written into its own config before it starts.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}
