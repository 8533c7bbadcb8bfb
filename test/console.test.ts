import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './fixtures/petrel-process.js';
import { fixturePlugin } from './fixtures/paths.js';
import { afterFirstAttempt, eventually } from './harness/eventually.js';
import { SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

const TOKEN = 'console-test-token-0123456789';
/** Debian's chromium (.ci/run installs it); never a browser downloaded by a package. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** With PETREL_SCREENSHOTS=1 the test also saves a picture of each page to docs/console/ (for the README). */
const SCREENSHOTS = process.env.PETREL_SCREENSHOTS ? join(REPO_ROOT, 'docs', 'console') : undefined;

async function http(server: TestServer, path: string, init: RequestInit = {}): Promise<Response> {
  const address = server.petrel.adminAddress!;
  return fetch(`http://127.0.0.1:${address.port}${path}`, { redirect: 'manual', ...init });
}

/**
 * The web console in a real headless Chromium, against a real server whose
 * deliveries are all deferred (so what is sent stays in the queue): sign in,
 * watch a message arrive, hold and release it, read its history; and the
 * HTTP rules that keep the console safe (token never in URLs, HttpOnly
 * SameSite=Strict cookie, a header for writes, a CSP without inline code).
 */
describe('web console', () => {
  const browserData = tempDir('petrel-chromium-');
  let sink: SinkServer;
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  async function shot(name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }

  async function send(from: string, to: string): Promise<string> {
    const client = await server.client('mx', { localAddress: '127.0.0.2' });
    const reply = await client.sendMail(from, [to], sampleMessage({ subject: 'console test' }));
    await client.quit();
    return /queued as (\S+)/.exec(reply.raw)![1];
  }

  before(async () => {
    sink = await SinkServer.start({ rcpt: () => ({ code: 451, text: '4.2.1 Mailbox busy, try later' }) });
    server = await startTestServer({
      admin: { host: '127.0.0.1', port: 0, token: TOKEN },
      delivery: { retry: ['1h'], delayWarningAfter: 0 },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { path: fixturePlugin('sink-delivery'), options: { port: sink.port } },
      ],
    });
    context = await chromium.launchPersistentContext(browserData.path, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('console', (message) => {
      // 401s are expected: the page asks whether it is signed in, and a wrong token is tried on purpose.
      if (message.type() === 'error' && !/status of 401/.test(message.text())) problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
  });

  after(async () => {
    await context?.close();
    await server?.stop();
    await sink?.close();
    browserData.remove();
  });

  it('signs in, shows a message sent over SMTP, holds and releases it, and shows its delivery attempt', async () => {
    const base = `http://127.0.0.1:${server.petrel.adminAddress!.port}`;
    await page.goto(`${base}/`);
    await page.locator('input[name=token]').waitFor();
    await shot('sign-in');
    await page.fill('input[name=token]', 'wrong-token');
    await page.click('button[type=submit]');
    await page.getByText('That is not the admin token.').waitFor();
    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');
    await page.getByText('Messages per minute, last hour').waitFor();
    assert.ok(!page.url().includes(TOKEN), 'the token is not in the URL');

    const id = await send('alice@origin.test', 'bob@far.test');
    await afterFirstAttempt(server, id);
    await send('carol@origin.test', 'dave@elsewhere.test');
    await page.reload();
    await page.getByText('Messages per minute, last hour').waitFor();
    await page.waitForTimeout(300); // the charts draw
    await shot('overview');

    await page.click('nav >> text=Queue');
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor();
    await row.locator('input[type=checkbox]').check();
    await page.click('button[data-action=hold]');
    await row.locator('.state.held').waitFor();
    assert.equal((await server.petrel.queue.inspect(id))?.held, true, 'the queue holds it');
    await shot('queue');

    await row.locator('input[type=checkbox]').check();
    await page.click('button[data-action=release]');
    await row.locator('.state:not(.held)').waitFor();
    assert.equal((await server.petrel.queue.inspect(id))?.held, false, 'the queue released it');

    await row.locator(`a[href="/messages/${id}"]`).click();
    await page.locator('.timeline').waitFor();
    const attempt = page.locator('.timeline li.attempt').first();
    await attempt.waitFor();
    assert.match(await attempt.innerText(), /Delivery attempt 1: sink-delivery → far\.test/);
    assert.match(await attempt.innerText(), /451 4\.2\.1 Mailbox busy, try later/);
    assert.match(await page.locator('.timeline').innerText(), /Operator: hold[\s\S]*Operator: release/);
    await page.click('text=Show the raw message');
    await page.locator('pre.raw').waitFor();
    assert.match(await page.locator('pre.raw').innerText(), /Subject: console test/);
    await shot('message');
    assert.deepEqual(problems, [], 'no errors in the page (a CSP violation would be one)');
  });

  it('shows live sessions, one row a connection with each plugin verdict', async () => {
    await page.click('nav >> text=Live sessions');
    await page.locator('.link-state.up').waitFor();
    await send('eve@origin.test', 'frank@far.test');
    const chip = page.locator('table.sessions tr .chip.accept', { hasText: 'relay-access' }).first();
    await chip.waitFor();
    await page.locator('table.sessions', { hasText: '<eve@origin.test>' }).first().waitFor();
    await eventually(async () => (await page.locator('table.sessions').nth(1).innerText()).includes('far.test'), 'the outbound delivery to show');
    await shot('sessions');
    assert.deepEqual(problems, []);
  });

  it('keeps the token out of URLs and cookies, refuses writes without the console header, and serves a strict CSP', async () => {
    assert.equal((await http(server, '/api/queue')).status, 401);
    assert.equal((await http(server, '/api/session', { method: 'POST', body: JSON.stringify({ token: 'nope' }) })).status, 401);
    const signIn = await http(server, '/api/session', { method: 'POST', body: JSON.stringify({ token: TOKEN }) });
    assert.equal(signIn.status, 200);
    const cookie = signIn.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^petrel_console=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\//);
    assert.ok(!cookie.includes(TOKEN));
    const session = cookie.split(';')[0];
    assert.equal((await http(server, '/api/queue', { headers: { cookie: session } })).status, 200);
    const id = await send('grace@origin.test', 'heidi@far.test');
    const forged = await http(server, `/api/queue/${id}/hold`, { method: 'POST', headers: { cookie: session } });
    assert.equal(forged.status, 403, 'a cookie alone cannot change anything (cross-site request forgery)');
    const real = await http(server, `/api/queue/${id}/hold`, { method: 'POST', headers: { cookie: session, 'x-petrel-console': '1' } });
    assert.equal(real.status, 200);
    const home = await http(server, '/');
    const csp = home.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /style-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(await home.text(), /<script type="module" src="\/console\/app\.js">/);
    await http(server, '/api/session', { method: 'DELETE', headers: { cookie: session } });
    assert.equal((await http(server, '/api/queue', { headers: { cookie: session } })).status, 401, 'signed out');
  });

  it('shows hostile message data as text: no markup is made of it and no script runs, even with the CSP off', async () => {
    // The CSP alone would stop an injected handler; a browser that ignores it shows whether the pages themselves are safe.
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    try {
      const open = await browser.newContext({ bypassCSP: true });
      const hostile = await open.newPage();
      const errors: string[] = [];
      hostile.on('pageerror', (error) => errors.push(error.message));
      const base = `http://127.0.0.1:${server.petrel.adminAddress!.port}`;
      await hostile.goto(`${base}/`);
      await hostile.fill('input[name=token]', TOKEN);
      await hostile.click('button[type=submit]');
      await hostile.getByText('Messages per minute, last hour').waitFor();
      await hostile.click('nav >> text=Live sessions');
      await hostile.locator('.link-state.up').waitFor();

      const client = await server.client('mx', { localAddress: '127.0.0.2', ehlo: '<svg/onload=window.__xss=1>' });
      const reply = await client.sendMail(
        '"<svg/onload=window.__xss=2>"@origin.test',
        ['xss@far.test'],
        sampleMessage({
          from: '"<img src=x onerror=window.__xss=3>" <mallory@origin.test>',
          subject: '<img src=x onerror=window.__xss=4><script>window.__xss=5</script>',
          messageId: '<"<img src=x onerror=window.__xss=6>"@origin.test>',
        }),
      );
      await client.quit();
      const id = /queued as (\S+)/.exec(reply.raw)![1];
      await hostile.locator('table.sessions', { hasText: '<svg/onload=window.__xss=1>' }).first().waitFor();
      await afterFirstAttempt(server, id);
      await hostile.click('nav >> text=Queue');
      await hostile.locator(`tr[data-id="${id}"]`, { hasText: '<svg/onload=window.__xss=2>' }).waitFor();
      await hostile.locator(`a[href="/messages/${id}"]`).click();
      await hostile.locator('.timeline li.attempt').first().waitFor();
      await hostile.click('text=Show the raw message');
      await hostile.locator('pre.raw').waitFor();
      const text = await hostile.locator('body').innerText();
      for (const shown of ['helo <svg/onload=window.__xss=1>', '<svg/onload=window.__xss=2>', '<img src=x onerror=window.__xss=3>', '<script>window.__xss=5</script>', '<img src=x onerror=window.__xss=6>']) {
        assert.ok(text.includes(shown), `"${shown}" is on the page as text`);
      }
      assert.equal(await hostile.locator('main img, main svg, main script').count(), 0, 'no element was made of message data');
      assert.equal(await hostile.evaluate("window.__xss"), undefined, 'no injected script ran');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });

  it('asks for the token or the session on every API route, the SSE trace streams too', async () => {
    const routes: [string, string][] = [
      ['GET', '/api/queue'],
      ['GET', '/api/queue/stats'],
      ['GET', '/api/activity'],
      ['GET', '/api/why?q=alice'],
      ['GET', '/api/trace/server'],
      ['GET', '/api/trace/client'],
      ['GET', '/api/trace/watchers'],
      ['GET', '/api/config'],
      ['GET', '/api/plugins'],
      ['GET', '/api/session'],
      ['POST', '/api/reload'],
      ['POST', '/api/queue/retry-all'],
      ['POST', '/api/queue/bulk'],
    ];
    const refused = async (method: string, path: string, headers: Record<string, string>) => {
      const response = await http(server, path, { method, headers });
      assert.equal(response.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
      await response.body?.cancel();
    };
    for (const [method, path] of routes) {
      await refused(method, path, {});
      await refused(method, path, { cookie: 'petrel_console=made-up-session-id' });
    }
    // Wrong tokens count towards the guessing limit (tested below): one is enough here.
    await refused('GET', '/api/trace/server', { authorization: 'Bearer wrong-token' });
  });

  it('marks the cookie Secure when the console is reached through a TLS proxy', async () => {
    const direct = await http(server, '/api/session', { method: 'POST', body: JSON.stringify({ token: TOKEN }) });
    assert.doesNotMatch(direct.headers.get('set-cookie') ?? '', /Secure/, 'plain HTTP: a Secure cookie would never come back');
    for (const proxied of [{ 'x-forwarded-proto': 'https' }, { forwarded: 'for=192.0.2.1;proto=https;host=console.example' }]) {
      const response = await http(server, '/api/session', { method: 'POST', headers: proxied, body: JSON.stringify({ token: TOKEN }) });
      assert.match(response.headers.get('set-cookie') ?? '', /; HttpOnly; SameSite=Strict; Path=\/; Secure$/, JSON.stringify(proxied));
    }
  });

  it('throttles token guessing from an address, and says when to try again', async () => {
    const guarded = await startTestServer({ admin: { host: '127.0.0.1', port: 0, token: TOKEN } });
    try {
      const signIn = (token: string) => http(guarded, '/api/session', { method: 'POST', body: JSON.stringify({ token }) });
      const guesses: number[] = [];
      for (let i = 0; i < 10; i++) guesses.push((await signIn(`guess-${i}`)).status);
      assert.deepEqual(guesses, Array(10).fill(401), 'ten wrong tokens are each told so');
      const throttled = await signIn(TOKEN);
      assert.equal(throttled.status, 429, 'then even the right one waits: a guesser learns nothing');
      assert.match(throttled.headers.get('retry-after') ?? '', /^\d+$/);
      const bearer = await http(guarded, '/api/queue', { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(bearer.status, 429, 'a bearer token from that address waits too');
      assert.equal((await http(guarded, '/health')).status, 200, 'what needs no token is not throttled');
    } finally {
      await guarded.stop();
    }
  });

  it('is off without an admin token', async () => {
    const bare = await startTestServer({ admin: { host: '127.0.0.1', port: 0 } });
    try {
      assert.equal((await http(bare, '/')).status, 404);
      assert.equal((await http(bare, '/api/session', { method: 'POST', body: JSON.stringify({ token: '' }) })).status, 403);
    } finally {
      await bare.stop();
    }
  });
});
