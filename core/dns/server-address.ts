import { isIP } from 'node:net';

/** A name server to ask: an IP address and a port. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

export const DNS_PORT = 53;

/**
 * Reads a name server as operators write it and as `Resolver.getServers()`
 * prints it: `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]` or `[::1]:5353`.
 * An IPv6 address with a port must be bracketed (`::1:53` is an address).
 * Undefined for anything else: names are not allowed, since looking up the
 * resolver's own name would need a resolver.
 */
export function parseServerAddress(text: string): ServerAddress | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  if (bracketed) return withPort(bracketed[1], bracketed[2], 6);
  if (isIP(text) !== 0) return { host: text, port: DNS_PORT };
  const hostPort = /^([^:]+):(\d{1,5})$/.exec(text);
  return hostPort ? withPort(hostPort[1], hostPort[2], 4) : undefined;
}

function withPort(host: string, port: string | undefined, family: 4 | 6): ServerAddress | undefined {
  if (isIP(host) !== family) return undefined;
  const number = port === undefined ? DNS_PORT : Number(port);
  return number >= 1 && number <= 65535 ? { host, port: number } : undefined;
}

/** The spelling `Resolver.setServers()` takes: `127.0.0.1:53`, `[::1]:5353`. */
export function formatServerAddress(server: ServerAddress): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
