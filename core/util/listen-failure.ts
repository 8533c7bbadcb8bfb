import { PetrelError } from '../errors.js';

/**
 * The error for a listener that could not open its address: one line
 * naming the listener, the address, the reason and what to do about it,
 * instead of Node's `listen EADDRINUSE` stack.
 */
export function listenFailure(listener: string, host: string, port: number, error: unknown): PetrelError {
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const reasons: Record<string, string> = {
    EADDRINUSE: `the address is in use: another program listens there (ss -ltnp 'sport = :${port}' shows which)`,
    EACCES: 'permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE (docs/operations.md, "Ports 25, 465 and 587")',
    EADDRNOTAVAIL: 'this machine has no such address',
  };
  const why = reasons[(error as NodeJS.ErrnoException)?.code ?? ''] ?? (error as Error)?.message ?? String(error);
  return new PetrelError('PETREL_LISTEN_FAILED', `${listener} cannot listen on ${address}: ${why}`, { cause: error });
}
