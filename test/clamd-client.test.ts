import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type ClamdAddress, parseClamdAnswer, scanWithClamd } from '../plugins/clamav/clamd-client.js';
import { ATTACHMENT_NAME, ATTACHMENT_SIGNATURE, ATTACHMENT_VIRUS, BODY_SIGNATURE, BODY_VIRUS, messageWithAttachment, TestClamd } from './fixtures/clamd.js';
import { MisbehavingScanner } from './fixtures/misbehaving-scanner.js';
import { ScanFailure } from '../core/index.js';
import { sparePort } from './harness/ports.js';
import { tempDir } from './harness/temp-dir.js';

const neverAborted = () => new AbortController().signal;
const stream = (text: string | Buffer) => Readable.from([Buffer.from(text)]);


describe('the clamd client, against a real clamd', () => {
  let clamd: TestClamd;
  before(async () => {
    clamd = await TestClamd.start({ streamMaxLength: '200K' });
  });
  after(() => clamd?.stop());

  const addresses = (): [string, ClamdAddress][] => [
    ['unix socket', { socket: clamd.socket }],
    ['TCP', { host: '127.0.0.1', port: clamd.port }],
  ];

  it('finds the body signature, over the unix socket and over TCP', async () => {
    for (const [, address] of addresses()) {
      const verdict = await scanWithClamd(address, stream(`Subject: v\r\n\r\nhello ${BODY_VIRUS}\r\n`), neverAborted());
      assert.deepEqual(verdict, { kind: 'infected', signature: BODY_SIGNATURE });
    }
  });

  it('finds the file signature in a base64 attachment', async () => {
    const verdict = await scanWithClamd({ socket: clamd.socket }, stream(messageWithAttachment('a@example.org', ATTACHMENT_VIRUS, ATTACHMENT_NAME)), neverAborted());
    assert.deepEqual(verdict, { kind: 'infected', signature: ATTACHMENT_SIGNATURE });
  });

  it('says clean for a clean message, also one sent in many chunks', async () => {
    assert.deepEqual(await scanWithClamd({ host: '127.0.0.1', port: clamd.port }, stream('Subject: hi\r\n\r\nhello\r\n'), neverAborted()), { kind: 'clean' });
    const lines = Array.from({ length: 3000 }, (_, index) => Buffer.from(`line ${index} of a clean message\r\n`));
    assert.deepEqual(await scanWithClamd({ socket: clamd.socket }, Readable.from(lines), neverAborted()), { kind: 'clean' });
  });

  it("answers too-large for a stream past clamd's StreamMaxLength, over both sockets (or fails naming it when clamd's close beat its answer)", async () => {
    for (const [, address] of addresses()) {
      const verdict = await scanWithClamd(address, stream(Buffer.alloc(1024 * 1024, 'a')), neverAborted()).catch((error: Error) => error);
      if (verdict instanceof Error) assert.match(verdict.message, /closed while the message was sent: larger than its StreamMaxLength/);
      else assert.deepEqual(verdict, { kind: 'too-large' });
    }
  });
});

describe('the clamd client, when clamd fails', () => {
  const dir = tempDir('petrel-clamd-client-');
  after(() => dir.remove());

  it('fails when nothing listens, on TCP and on a unix socket', async () => {
    const port = await sparePort();
    await assert.rejects(scanWithClamd({ host: '127.0.0.1', port }, stream('x'), neverAborted()), (error: Error) => error instanceof ScanFailure && /ECONNREFUSED/.test(error.message));
    await assert.rejects(scanWithClamd({ socket: join(dir.path, 'none.sock') }, stream('x'), neverAborted()), (error: Error) => error instanceof ScanFailure && /ENOENT/.test(error.message));
  });

  it('fails, with the abort reason, when the signal fires while clamd says nothing', async () => {
    const silent = await MisbehavingScanner.start({ kind: 'silent' }, join(dir.path, 'silent.sock'));
    try {
      const abort = new AbortController();
      const pending = scanWithClamd({ socket: silent.socketPath as string }, stream('x'), abort.signal);
      while (silent.requests === 0) await new Promise((resolve) => setImmediate(resolve));
      abort.abort(new ScanFailure('no answer within 1 second'));
      await assert.rejects(pending, /no answer within 1 second/);
    } finally {
      await silent.stop();
    }
  });

  for (const [what, bytes, reason] of [
    ['closes without a word', '', /without answering/],
    ['closes in the middle of its answer', 'stream: Petrel.Te', /middle of its answer/],
    ['answers garbage', 'HTTP/1.1 400 Bad Request\r\n\r\n\0', /not an INSTREAM result/],
    ['answers an error', 'stream: lstat() failed: No such file or directory. ERROR\0', /could not scan the message/],
    ['answers FOUND without a name', 'stream:  FOUND\0', /not an INSTREAM result/],
  ] as const) {
    it(`fails when clamd ${what}`, async () => {
      const broken = await MisbehavingScanner.start({ kind: 'answer', bytes });
      try {
        await assert.rejects(scanWithClamd({ host: '127.0.0.1', port: broken.port }, stream('x'), neverAborted()), (error: Error) => error instanceof ScanFailure && reason.test(error.message));
      } finally {
        await broken.stop();
      }
    });
  }

  it('reads the three answers INSTREAM has', () => {
    assert.deepEqual(parseClamdAnswer('stream: OK'), { kind: 'clean' });
    assert.deepEqual(parseClamdAnswer('stream: Win.Test.EICAR_HDB-1 FOUND'), { kind: 'infected', signature: 'Win.Test.EICAR_HDB-1' });
    assert.deepEqual(parseClamdAnswer('INSTREAM size limit exceeded. ERROR'), { kind: 'too-large' });
  });
});
