import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A loopback port nobody listens on now: with `bus`, its cluster bus port
 * +10000 is free too; with `udp`, the UDP port of the same number (a DNS
 * server takes both).
 */
export async function sparePort(options: { bus?: boolean; udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await isFree(port)) && (!options.bus || (await isFree(port + 10_000))) && (!options.udp || (await isFreeUdp(port)))) return port;
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

function isFreeUdp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createSocket('udp4');
    probe.once('error', () => resolve(false));
    probe.bind(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}
