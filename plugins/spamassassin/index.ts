import { type HookRegistrar, type IncomingMessage, inject, injectable, type PluginMeta, port, reject, type ScanOutcome, scanMessage, scanOptions, TOKENS, z } from 'petrel';
import { checkWithSpamd, SAFE_USER, type SpamdVerdict } from './spamd-client.js';
import { SPAM_HEADERS, spamHeaders } from './spam-headers.js';

export const options = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe("spamd's address or host name"),
    port: port().default(783).describe("spamd's port"),
    threshold: z.number().optional().describe("score from which a message is spam and quarantined (filed as Junk); default spamd's own required_score"),
    rejectThreshold: z.number().optional().describe('score from which a message is refused with 550 5.7.1; default never'),
    user: z
      .string()
      .regex(SAFE_USER, 'letters, digits and . _ @ + - only, at most 128')
      .optional()
      .describe("the user spamd checks as (spamd's User header): whose preferences apply when spamd reads per-user settings"),
    // spamc sends nothing over 500 KiB by default: SpamAssassin is slow on big messages, and spam is small.
    ...scanOptions({ maxSize: '500KiB' }),
  })
  .refine((opts) => opts.threshold === undefined || opts.rejectThreshold === undefined || opts.rejectThreshold >= opts.threshold, {
    message: 'rejectThreshold must not be below threshold (a message refused for its score would never be quarantined for it)',
    path: ['rejectThreshold'],
  });

type Options = z.output<typeof options>;

/**
 * Asks spamd (SpamAssassin's daemon) about each message, once, from the
 * `message` hook, and acts on the score: from `rejectThreshold` the message
 * is refused (550 5.7.1), from `threshold` (spamd's required_score unless
 * set) it is quarantined, below it passes. X-Spam-Status and X-Spam-Score
 * say what spamd found on every message it judged; the shared scanning rules
 * (core/filter: failMode, maxSize, X-Petrel-Filter, the log line) do the rest.
 */
@injectable()
export default class SpamAssassin {
  static readonly meta: PluginMeta = {
    name: 'spamassassin',
    version: '1.0.0',
    description: 'scores messages with SpamAssassin (spamd): X-Spam-Status headers, quarantine from a threshold, 550 from a reject threshold',
  };
  static readonly options = options;

  constructor(@inject(TOKENS.PluginOptions) private readonly opts: Options) {}

  register(hooks: HookRegistrar): void {
    hooks.on('message', (session, transaction, message, signal) => {
      // Before anything else: a sender's "X-Spam-Status: No" must not survive on a message we did not judge.
      for (const name of SPAM_HEADERS) message.headers.remove(name);
      return scanMessage({ scanner: SpamAssassin.meta.name, options: this.opts, session, transaction, message, signal }, (abort) => this.check(message, abort));
    });
  }

  async check(message: IncomingMessage, signal: AbortSignal): Promise<ScanOutcome> {
    const headers = message.headers.toBuffer();
    const content = message.stream();
    const length = headers.length + message.size - message.file.bodyOffset;
    const answer = await checkWithSpamd({ host: this.opts.host, port: this.opts.port }, { length, content }, { user: this.opts.user, signal });
    return this.outcome(message, answer);
  }

  /** What spamd's answer means here: the headers always, then refuse, quarantine or pass. */
  outcome(message: IncomingMessage, answer: SpamdVerdict): ScanOutcome {
    const threshold = this.opts.threshold ?? answer.required;
    const spam = answer.score >= threshold;
    for (const [name, value] of spamHeaders(answer, spam, threshold)) message.headers.prepend(name, value);
    const score = answer.score.toFixed(1);
    const verdict = { verdict: spam ? 'spam' : 'clean', score: answer.score, threshold, symbols: answer.symbols };
    const rejectThreshold = this.opts.rejectThreshold;
    if (rejectThreshold !== undefined && answer.score >= rejectThreshold) {
      return { verdict: { ...verdict, action: 'reject' }, result: reject(550, '5.7.1', `Message refused as spam (score ${score}, limit ${rejectThreshold})`) };
    }
    if (spam) return { verdict: { ...verdict, action: 'quarantine' }, quarantine: `score ${score} >= ${threshold}` };
    return { verdict: { ...verdict, action: 'no action' } };
  }
}
