import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts the console (core/admin/console/build.mjs): dist/console/. */
const ASSETS_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * No inline script or style, nothing from another origin: the page, its
 * script and its style sheet come from this listener, data only from /api.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Serves the console's files: `/` is its page (every console route is the same page), `/console/<file>` its assets. */
export async function serveConsole(path: string, response: ServerResponse): Promise<boolean> {
  const name = path === '/' || !path.startsWith('/console/') ? 'index.html' : path.slice('/console/'.length);
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name) || !(extname(name) in TYPES)) return false;
  let body: Buffer;
  try {
    body = await readFile(join(ASSETS_DIR, name));
  } catch {
    if (name !== 'index.html') return false;
    response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', ...CONSOLE_HEADERS });
    response.end('The console was not built: run `npm run build`.\n');
    return true;
  }
  response.writeHead(200, { 'content-type': TYPES[extname(name)], 'cache-control': 'no-cache', ...CONSOLE_HEADERS });
  response.end(body);
  return true;
}
