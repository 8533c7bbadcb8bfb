import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenGuessThrottle } from './token-guess-throttle.js';

/** How long a console sign-in lasts without use. */
const SESSION_IDLE_MS = 8 * 3_600_000;
/** Console sign-ins kept at most (oldest go first). */
const MAX_SESSIONS = 100;
export const SESSION_COOKIE = 'petrel_console';
/** Non-GET requests authenticated by the cookie must carry this header (a cross-site form or image cannot). */
export const CONSOLE_HEADER = 'x-petrel-console';

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403 | 429,
    message: string,
    /** For 429: seconds until the client may try again (the Retry-After header). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/**
 * Who may use /api: a request with `Authorization: Bearer <admin.token>`
 * (scripts, `petrel trace`), or the web console, which signs in once by
 * POSTing the token and then holds an opaque session id in a cookie that
 * is HttpOnly (scripts in the page cannot read it), SameSite=Strict (no
 * other site's page sends it) and never the token itself; the token never
 * travels in a URL, so it cannot end up in a proxy's or browser's log. As a
 * second guard against cross-site requests, a state-changing request that
 * rides on the cookie must also carry the X-Petrel-Console header, which a
 * cross-origin page cannot add without a CORS preflight we never grant.
 * Wrong tokens are counted per client address (token-guess-throttle.ts):
 * a guesser is made to wait. The cookie is Secure when the request came
 * over TLS, here or (X-Forwarded-Proto / Forwarded) at a proxy in front.
 */
export class AdminAuth {
  readonly #sessions = new Map<string, number>();
  readonly #guesses: TokenGuessThrottle;

  constructor(
    private readonly token: string | undefined,
    now: () => number = Date.now,
  ) {
    this.#guesses = new TokenGuessThrottle(now);
  }

  get enabled(): boolean {
    return this.token !== undefined && this.token !== '';
  }

  /** Throws AuthError unless the request may use the API. */
  check(request: IncomingMessage): void {
    if (!this.enabled) throw new AuthError(403, 'the admin API is off: set admin.token (e.g. token: ${PETREL_ADMIN_TOKEN})');
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) {
      if (!this.#isToken(bearer, request)) throw new AuthError(401, 'missing or wrong bearer token');
      return;
    }
    const session = cookieOf(request, SESSION_COOKIE);
    if (session === undefined || !this.#touch(session)) throw new AuthError(401, 'missing or wrong bearer token (or console session expired: sign in again)');
    if (request.method !== 'GET' && request.method !== 'HEAD' && request.headers[CONSOLE_HEADER] !== '1') {
      throw new AuthError(403, `a console request that changes something needs the ${CONSOLE_HEADER} header`);
    }
  }

  /** POST /api/session with `{ "token": "..." }`: sets the console's cookie, or throws 401. */
  signIn(token: unknown, request: IncomingMessage, response: ServerResponse): void {
    if (!this.enabled) throw new AuthError(403, 'the admin API is off: set admin.token');
    if (typeof token !== 'string' || !this.#isToken(token, request)) throw new AuthError(401, 'wrong token');
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.#sessions.set(id, Date.now() + SESSION_IDLE_MS);
    const secure = cameOverTls(request) ? '; Secure' : '';
    response.setHeader('set-cookie', `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/${secure}`);
  }

  /** DELETE /api/session: forgets the console session of this request. */
  signOut(request: IncomingMessage, response: ServerResponse): void {
    const session = cookieOf(request, SESSION_COOKIE);
    if (session !== undefined) this.#sessions.delete(session);
    response.setHeader('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
  }

  /** Compares in constant time, unless the address must wait (429) for having guessed too often. */
  #isToken(given: string, request: IncomingMessage): boolean {
    const address = request.socket.remoteAddress ?? '';
    const wait = this.#guesses.waitSeconds(address);
    if (wait !== undefined) throw new AuthError(429, `too many wrong tokens from your address: try again in ${wait} s`, wait);
    const expected = Buffer.from(this.token ?? '');
    const actual = Buffer.from(given);
    const right = expected.length > 0 && actual.length === expected.length && timingSafeEqual(actual, expected);
    if (right) this.#guesses.right(address);
    else this.#guesses.wrong(address);
    return right;
  }

  #touch(session: string): boolean {
    const expires = this.#sessions.get(session);
    if (expires === undefined) return false;
    if (expires < Date.now()) {
      this.#sessions.delete(session);
      return false;
    }
    this.#sessions.set(session, Date.now() + SESSION_IDLE_MS);
    return true;
  }
}

/**
 * TLS here (never, today: the admin listener speaks plain HTTP) or at a
 * proxy that says so. Trusting the proxy's header is safe for this one
 * use: a client that lies about it gets a Secure cookie over plain HTTP,
 * which its browser then never sends back.
 */
function cameOverTls(request: IncomingMessage): boolean {
  if ((request.socket as { encrypted?: boolean }).encrypted) return true;
  const forwardedProto = String(request.headers['x-forwarded-proto'] ?? '').split(',')[0].trim().toLowerCase();
  const forwarded = /(?:^|[;,\s])proto="?https"?(?:[;,\s]|$)/i.test(String(request.headers.forwarded ?? ''));
  return forwardedProto === 'https' || forwarded;
}

function cookieOf(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}
