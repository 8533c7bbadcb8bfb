import type { SpamdVerdict } from './spamd-client.js';

/** The header fields this plugin writes; copies that came with a message are removed first, always. */
export const SPAM_HEADERS = ['X-Spam-Status', 'X-Spam-Score'] as const;

/**
 * X-Spam-Status in SpamAssassin's own shape, so that mailbox filters written
 * for spamc's headers keep working, and X-Spam-Score as a bare number:
 *
 *   X-Spam-Status: Yes, score=8.0 required=5.0 tests=MISSING_DATE,PETREL_TEST_MIDDLING
 *   X-Spam-Score: 8.0
 *
 * `required` is the threshold this plugin judged by (its `threshold` option,
 * or spamd's required_score).
 */
export function spamHeaders(answer: SpamdVerdict, spam: boolean, threshold: number): [(typeof SPAM_HEADERS)[number], string][] {
  const tests = answer.symbols.length > 0 ? answer.symbols.join(',') : 'none';
  return [
    ['X-Spam-Status', `${spam ? 'Yes' : 'No'}, score=${answer.score.toFixed(1)} required=${threshold.toFixed(1)} tests=${tests}`],
    ['X-Spam-Score', answer.score.toFixed(1)],
  ];
}
