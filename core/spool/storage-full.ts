/**
 * Whether a failure to store a message means there is no room for it: the
 * disk or a quota is full (ENOSPC, EDQUOT), or Redis is at its `maxmemory`
 * (it answers `OOM command not allowed ...`). Such a failure is answered
 * `452 4.3.1` (RFC 5321 "insufficient system storage", RFC 3463 "mail
 * system full"), which tells the client to try later, like any 4xx, and
 * tells its operator what is wrong; other failures stay `451 4.3.0`.
 */
export function isStorageFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  return error instanceof Error && error.message.startsWith('OOM ');
}
