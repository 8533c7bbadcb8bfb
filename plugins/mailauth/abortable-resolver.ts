import type { DNSResolver } from 'mailauth';

/**
 * The resolver for one hook call. Once the hook's signal fires (the handler
 * ran past its timeout and the client has been answered 451), lookups still
 * waiting fail with the signal's reason and no new query is made, so an
 * abandoned verification ends at once instead of querying DNS, possibly for
 * minutes, for a message that will not be accepted this time.
 */
export function untilAborted(resolver: DNSResolver, signal: AbortSignal): DNSResolver {
  return (name: string, type: string) => {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const abandon = () => reject(signal.reason as Error);
      signal.addEventListener('abort', abandon, { once: true });
      resolver(name, type).then(
        (answer) => {
          signal.removeEventListener('abort', abandon);
          resolve(answer);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', abandon);
          reject(error as Error);
        },
      );
    });
  };
}
