const SECRET_KEY = /pass(word)?|secret|token|credential|private.?key|api.?key/i;

/**
 * `scheme://user:password@host...`: the userinfo of a URL that carries a
 * password. The userinfo ends at the last `@` before the path, as ioredis
 * (and any URL parser) reads it, so a bare `@` in the user name or the
 * password is part of them: the password is hidden whole.
 */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#:]*):[^/?#]*@/i;

/**
 * A copy of `value` with secrets replaced, for showing config over the admin
 * API: the values of secret-looking keys, and the password in any URL
 * (`redis://:secret@host` becomes `redis://:[redacted]@host`).
 */
export function redact(value: unknown): unknown {
  if (typeof value === 'string') return hideUrlPassword(value);
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, inner]) => [key, SECRET_KEY.test(key) && inner !== undefined && inner !== '' ? '[redacted]' : redact(inner)]),
  );
}

/** The URL with its password (if any) replaced by `[redacted]`; the user name stays, it helps finding the account. */
export function hideUrlPassword(text: string): string {
  return text.replace(URL_PASSWORD, '$1:[redacted]@');
}
