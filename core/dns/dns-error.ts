/**
 * A lookup failure as node:dns makes them (`queryA ENOTFOUND example.org`,
 * with `code` and `hostname`), so every resolver fails the same way and
 * callers (mailauth, mx-connect, our plugins) read one set of codes.
 */
export function dnsError(code: string, type: string, name: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`query${type} ${code} ${name}`), { code, hostname: name });
}
