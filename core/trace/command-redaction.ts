/**
 * What a traced command line may show. Credentials never leave the process:
 *
 * - `AUTH PLAIN <base64>`, `AUTH LOGIN <base64 user>`, any initial response:
 *   the mechanism stays, the rest becomes `***`;
 * - continuation lines of an AUTH exchange (the user, the password, a
 *   response to a challenge): `***`;
 * - XCLIENT's `LOGIN=` (the user a trusted front end authenticated) and any
 *   `PASSWORD=`-like attribute: the value becomes `***`.
 *
 * Message data is never traced at all (only its size), so it needs no rule here.
 */
export const REDACTED = '***';

const AUTH_WITH_ARGUMENT = /^(\s*AUTH\s+\S+)\s+\S.*$/i;
const XCLIENT = /^\s*XCLIENT\s/i;
const SECRET_ATTRIBUTE = /\b(LOGIN|PASS(?:WORD)?|SECRET|TOKEN)=\S*/gi;

/** A command line (without CRLF) as a trace may show it; `continuation` is true for a line inside an AUTH exchange. */
export function redactCommand(line: string, continuation: boolean): string {
  if (continuation) return REDACTED;
  const auth = AUTH_WITH_ARGUMENT.exec(line);
  if (auth) return `${auth[1]} ${REDACTED}`;
  if (XCLIENT.test(line)) return line.replace(SECRET_ATTRIBUTE, (_match, name: string) => `${name}=${REDACTED}`);
  return line;
}
