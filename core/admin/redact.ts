const SECRET_KEY = /pass(word)?|secret|token|credential|private.?key|api.?key/i;

/** A copy of `value` with secret-looking keys replaced, for showing config over the admin API. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, inner]) => [key, SECRET_KEY.test(key) && inner !== undefined && inner !== '' ? '[redacted]' : redact(inner)]),
  );
}
