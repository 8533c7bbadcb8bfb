import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { NotConvertible, planSevenBit } from '../core/delivery/downgrade/seven-bit-plan.js';
import { toSevenBit } from '../core/delivery/downgrade/seven-bit-stream.js';
import { parseMime } from './harness/mime-parts.js';

/**
 * The 7-bit conversion on its own (core/delivery/downgrade/): the cases the
 * end-to-end test in downgrade.test.ts does not reach — what needs no
 * conversion, what cannot be converted, parts far bigger than a stream
 * chunk, messages nested in messages — checked by parsing the result with
 * mailsplit.
 */

function message(...pieces: (string | Buffer)[]): Buffer {
  return Buffer.concat(pieces.map((piece) => (typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece)));
}

/** The stream as it would come from the queue: in small chunks, so parts span many of them. */
function chunked(bytes: Buffer, size = 1000): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return Readable.from(chunks);
}

async function convert(bytes: Buffer): Promise<Buffer> {
  const plan = await planSevenBit(chunked(bytes));
  const out: Buffer[] = [];
  for await (const chunk of toSevenBit(chunked(bytes), plan)) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

describe('7-bit conversion', () => {
  it('plans nothing for a message that is 7-bit already, whatever it declared', async () => {
    const ascii = message('Subject: ascii\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nonly ascii\r\n');
    assert.equal((await planSevenBit(chunked(ascii))).size, 0);
  });

  it('re-encodes a 3 MB binary attachment and a long 8-bit text through backpressure, byte for byte', async () => {
    const blob = randomBytes(3 * 1024 * 1024);
    const text = `${'Grüße, '.repeat(20_000)}\r\nEnde.`;
    const original = message(
      'Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n',
      '--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
      text,
      '\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n',
      blob,
      '\r\n--b--\r\n',
    );
    const converted = await convert(original);
    assert.equal(converted.findIndex((byte) => byte >= 0x80), -1);
    const parts = (await parseMime(converted)).parts;
    assert.deepEqual(parts.map((p) => p.encoding), ['quoted-printable', 'base64']);
    assert.equal(parts[0].decoded.toString('utf8'), text);
    assert.ok(parts[1].decoded.equals(blob), 'the attachment decodes to the same bytes');
    assert.deepEqual(await convert(original), converted, 'the same bytes every time (a signature over one copy holds for the next)');
  });

  it('converts a message inside a message inside a message', async () => {
    const innermost = 'Subject: innermost\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄrger';
    const middle = `Subject: middle\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: message/rfc822\r\n\r\n${innermost}\r\n--m--`;
    const outer = message(`Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${middle}\r\n`);
    const converted = await convert(outer);
    assert.equal(converted.findIndex((byte) => byte >= 0x80), -1);
    const level1 = await parseMime(converted);
    assert.equal(level1.parts[0].encoding, '7bit');
    const level2 = await parseMime(level1.parts[0].decoded);
    const level3 = await parseMime(level2.parts[0].decoded);
    assert.deepEqual(level3.parts.map((p) => [p.encoding, p.decoded.toString('utf8')]), [['quoted-printable', 'Ärger']]);
  });

  it('refuses what no transfer encoding can reach: headers, preambles, raw bytes in base64, a delivery-status part', async () => {
    const cases: [string, Buffer][] = [
      ['8-bit bytes in a header field', message('Subject: Grüße\r\n\r\nbody\r\n')],
      ['8-bit bytes outside any MIME part', message('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\nPräambel\r\n--b\r\n\r\nx\r\n--b--\r\n')],
      ['raw 8-bit bytes in a base64', message('MIME-Version: 1.0\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBOR\xff\r\n')],
      ['8-bit content in a message/delivery-status part', message('MIME-Version: 1.0\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; jürgen@example.org\r\n')],
    ];
    for (const [reason, bytes] of cases) {
      await assert.rejects(planSevenBit(chunked(bytes, 7)), (error: Error) => error instanceof NotConvertible && error.message.startsWith(reason), reason);
    }
  });
});
