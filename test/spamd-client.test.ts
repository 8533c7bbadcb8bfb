import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { checkWithSpamd, parseSpamdAnswer } from '../plugins/spamassassin/spamd-client.js';
import { ScanFailure } from '../core/index.js';
import { sparePort } from './harness/ports.js';
import { MisbehavingScanner } from './fixtures/misbehaving-scanner.js';
import { GTUBE, MIDDLING_PHRASE, MIDDLING_RULE, MIDDLING_SCORE, REQUIRED_SCORE, TestSpamd } from './fixtures/spamd.js';

function message(body: string) {
  const bytes = Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: spamd client\r\n\r\n${body}\r\n`);
  return { length: bytes.length, content: Readable.from([bytes]) };
}

const neverAborted = () => new AbortController().signal;

describe('the spamd client, against a real spamd', () => {
  let spamd: TestSpamd;
  before(async () => {
    spamd = await TestSpamd.start();
  });
  after(() => spamd?.stop());

  it('reads GTUBE as spam, with its score, spamd\'s required score and the GTUBE symbol', async () => {
    const verdict = await checkWithSpamd({ host: '127.0.0.1', port: spamd.port }, message(GTUBE), { signal: neverAborted() });
    assert.equal(verdict.spam, true);
    assert.ok(verdict.score >= 1000, `score ${verdict.score}`);
    assert.equal(verdict.required, REQUIRED_SCORE);
    assert.ok(verdict.symbols.includes('GTUBE'), verdict.symbols.join(','));
  });

  it('reads a plain message as not spam', async () => {
    const verdict = await checkWithSpamd({ host: '127.0.0.1', port: spamd.port }, message('Lunch at noon?'), { user: 'alice@example.org', signal: neverAborted() });
    assert.equal(verdict.spam, false);
    assert.ok(verdict.score < REQUIRED_SCORE);
    assert.ok(!verdict.symbols.includes('GTUBE'));
  });

  it('sees the test rule score a middling message', async () => {
    const verdict = await checkWithSpamd({ host: '127.0.0.1', port: spamd.port }, message(`hello ${MIDDLING_PHRASE}`), { signal: neverAborted() });
    assert.ok(verdict.symbols.includes(MIDDLING_RULE));
    assert.ok(verdict.score >= MIDDLING_SCORE && verdict.score < 15, `score ${verdict.score}`);
  });

  it('sends a message bigger than a socket buffer whole (the Content-length matches what spamd reads)', async () => {
    const verdict = await checkWithSpamd({ host: '127.0.0.1', port: spamd.port }, message(`${GTUBE}\r\n${'a harmless line of text\r\n'.repeat(20_000)}`), { signal: neverAborted() });
    assert.ok(verdict.symbols.includes('GTUBE'));
  });
});

describe('the spamd client, when spamd fails', () => {
  it('fails when nothing listens', async () => {
    const port = await sparePort();
    await assert.rejects(checkWithSpamd({ host: '127.0.0.1', port }, message('x'), { signal: neverAborted() }), (error: Error) => error instanceof ScanFailure && /ECONNREFUSED/.test(error.message));
  });

  it('fails, with the abort reason, when the signal fires while spamd says nothing', async () => {
    const silent = await MisbehavingScanner.start({ kind: 'silent' });
    try {
      const abort = new AbortController();
      const pending = checkWithSpamd({ host: '127.0.0.1', port: silent.port }, message('x'), { signal: abort.signal });
      while (silent.requests === 0) await new Promise((resolve) => setImmediate(resolve));
      abort.abort(new ScanFailure('no answer within 1 second'));
      await assert.rejects(pending, /no answer within 1 second/);
    } finally {
      await silent.stop();
    }
  });

  for (const [what, bytes, reason] of [
    ['closes without a word', '', /without answering/],
    ['closes in the middle of the headers', 'SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: Tr', /middle of its answer/],
    ['closes in the middle of the symbols', 'SPAMD/1.1 0 EX_OK\r\nContent-length: 40\r\nSpam: True ; 9.0 / 5.0\r\n\r\nGTUBE,MISS', /middle of its answer/],
    ['answers garbage', 'HTTP/1.1 400 Bad Request\r\n\r\n', /not SPAMD/],
    ['answers binary garbage', '\u0000\u00ff\u0001garbage', /not SPAMD/],
    ['refuses the request', 'SPAMD/1.0 76 Bad header line: (Content-Length contains non-numeric bytes)\r\n', /refused the request: 76/],
    ['answers without a Spam header', 'SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n', /no readable Spam header/],
    ['answers a score that is no number', 'SPAMD/1.1 0 EX_OK\r\nSpam: True ; lots / 5.0\r\n\r\n', /no readable Spam header/],
  ] as const) {
    it(`fails when spamd ${what}`, async () => {
      const broken = await MisbehavingScanner.start({ kind: 'answer', bytes });
      try {
        await assert.rejects(checkWithSpamd({ host: '127.0.0.1', port: broken.port }, message('x'), { signal: neverAborted() }), (error: Error) => error instanceof ScanFailure && reason.test(error.message));
      } finally {
        await broken.stop();
      }
    });
  }

  it('reads an answer whose Spam header says No (older spamd) and an empty symbol list', () => {
    const verdict = parseSpamdAnswer(Buffer.from('SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: No ; -0.5 / 5.0\r\n\r\n'));
    assert.deepEqual(verdict, { spam: false, score: -0.5, required: 5, symbols: [] });
  });
});
