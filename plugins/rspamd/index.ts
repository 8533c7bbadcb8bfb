import http from 'node:http';
import { defer, type HookRegistrar, type IncomingMessage, inject, injectable, type PluginMeta, reject, ScanFailure, scanMessage, type ScanOutcome, scanOptions, type Session, TOKENS, type Transaction, unmapIPv4, z } from 'petrel';
import { applyMilterEdits } from './milter-edits.js';
import { parseAnswer, type RspamdAnswer, symbolsOf } from './rspamd-answer.js';
import { postMessage } from './rspamd-request.js';

const headerName = () => z.string().regex(/^[!-9;-~]+$/, 'expected a header field name like X-Spam');

export const options = z.strictObject({
  url: z
    .url({ protocol: /^http$/, error: 'expected an http:// URL like http://127.0.0.1:11333' })
    .default('http://127.0.0.1:11333')
    .describe("rspamd's normal worker (or its proxy in self-scan mode); /checkv2 is asked"),
  password: z.string().optional().describe('sent as the Password header, for an rspamd that asks for one'),
  ...scanOptions(),
  greylist: z
    .enum(['defer', 'ignore'])
    .default('defer')
    .describe("rspamd's greylist action: defer (451 4.7.1) or ignore (pass; use it when Petrel's greylist plugin greylists)"),
  headers: z
    .strictObject({
      spam: headerName().default('X-Spam').describe('"Yes" on messages rspamd calls spam (add header, rewrite subject)'),
      score: headerName().default('X-Spam-Score').describe('score / required score, on every scanned message'),
      symbols: headerName().default('X-Spam-Symbols').describe('the rules that matched, with their scores'),
    })
    .prefault({})
    .describe('names of the headers written on scanned messages (copies that came with the message are removed)'),
});

type Options = z.output<typeof options>;

/**
 * rspamd (https://rspamd.com) over its HTTP protocol: each message, with its
 * envelope and client, is posted to `/checkv2` once, streamed from the
 * spool, and rspamd's `action` decides: reject → 550 5.7.1, soft reject and
 * greylist → 451 4.7.1, add header and rewrite subject → spam headers and
 * quarantine (the recipient's Junk folder). The rules every scanner shares
 * (timeout, maxSize, failMode, authenticated mail) are core/filter's.
 */
@injectable()
export default class Rspamd {
  static readonly meta: PluginMeta = {
    name: 'rspamd',
    version: '1.0.0',
    description: 'spam filtering by rspamd (/checkv2): reject, defer, or headers and quarantine to Junk',
  };
  static readonly options = options;

  readonly #endpoint: URL;
  /** Connections to rspamd are reused between messages (rspamd keeps them open). */
  readonly #agent = new http.Agent({ keepAlive: true });

  constructor(@inject(TOKENS.PluginOptions) private readonly opts: Options) {
    this.#endpoint = new URL('checkv2', opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  }

  register(hooks: HookRegistrar): void {
    hooks.on('message', (session, transaction, message, signal) =>
      scanMessage({ scanner: 'rspamd', options: this.opts, session, transaction, message, signal }, (abort) => this.check(session, transaction, message, abort)),
    );
  }

  close(): void {
    this.#agent.destroy();
  }

  async check(session: Session, transaction: Transaction, message: IncomingMessage, signal: AbortSignal): Promise<ScanOutcome> {
    const text = await postMessage(this.#agent, this.#endpoint, this.#requestHeaders(session, transaction), message.stream(), signal);
    return this.#act(parseAnswer(text), message);
  }

  /** What rspamd's protocol wants to know besides the message (https://rspamd.com/doc/developers/protocol.html). */
  #requestHeaders(session: Session, transaction: Transaction): Record<string, string | string[]> {
    const headers: Record<string, string | string[]> = {
      IP: unmapIPv4(session.remote.address),
      From: transaction.from.address === '' ? '<>' : transaction.from.address,
      'Queue-Id': transaction.id,
    };
    if (transaction.to.length > 0) headers.Rcpt = transaction.to.map((to) => to.address);
    if (session.helo) headers.Helo = session.helo;
    if (session.remote.hostname) headers.Hostname = session.remote.hostname;
    if (session.user !== undefined) headers.User = session.user;
    if (this.opts.password !== undefined) headers.Password = this.opts.password;
    // HTTP header values are bytes: UTF-8 addresses (SMTPUTF8) go as their UTF-8 bytes.
    for (const [name, value] of Object.entries(headers)) headers[name] = Array.isArray(value) ? value.map(bytes) : bytes(value);
    return headers;
  }

  #act(answer: RspamdAnswer, message: IncomingMessage): ScanOutcome {
    const facts = { score: answer.score, threshold: answer.required_score, symbols: symbolsOf(answer), action: answer.action };
    const said = answer.messages?.smtp_message?.replace(/[\r\n]+/g, ' ').trim() || undefined;
    switch (answer.action) {
      case 'reject':
        return { verdict: { verdict: 'spam', ...facts }, result: reject(550, '5.7.1', said ?? 'Spam message rejected') };
      case 'soft reject':
        return { verdict: { verdict: 'deferred', ...facts }, result: defer(451, '4.7.1', said ?? 'Try again later') };
      case 'greylist':
        if (this.opts.greylist === 'defer') return { verdict: { verdict: 'greylisted', ...facts }, result: defer(451, '4.7.1', said ?? 'Greylisted, please try again later') };
        this.#writeHeaders(answer, message, false);
        return { verdict: { verdict: 'greylisted', ...facts } };
      case 'add header':
      case 'rewrite subject':
        if (answer.action === 'rewrite subject' && answer.subject !== undefined) {
          message.headers.remove('Subject');
          message.headers.append('Subject', answer.subject);
        }
        this.#writeHeaders(answer, message, true);
        return { verdict: { verdict: 'spam', ...facts }, quarantine: `${answer.action}, score ${answer.score.toFixed(2)}` };
      case 'no action':
        this.#writeHeaders(answer, message, false);
        return { verdict: { verdict: 'clean', ...facts } };
      default:
        throw new ScanFailure(`rspamd answered an action Petrel does not know: ${answer.action}`);
    }
  }

  /** rspamd's own header edits, then ours; copies of ours that came with the message go first. */
  #writeHeaders(answer: RspamdAnswer, message: IncomingMessage, spam: boolean): void {
    applyMilterEdits(message.headers, answer.milter);
    const names = this.opts.headers;
    for (const name of [names.spam, names.score, names.symbols]) message.headers.remove(name);
    const threshold = answer.required_score === undefined ? '' : ` / ${answer.required_score.toFixed(2)}`;
    message.headers.prepend(names.symbols, symbolsOf(answer).join(', ') || '(none)');
    message.headers.prepend(names.score, `${answer.score.toFixed(2)}${threshold}`);
    if (spam) message.headers.prepend(names.spam, 'Yes');
  }
}

function bytes(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}
