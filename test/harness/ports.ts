import { createServer } from 'node:net';

/** A loopback port nobody listens on now (and, with `bus`, its cluster bus port +10000 too). */
export async function sparePort(options: { bus?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await isFree(port)) && (!options.bus || (await isFree(port + 10_000)))) return port;
  }
  throw new Error('no spare loopback port found');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
