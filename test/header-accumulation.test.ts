import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { queuedMessageFrom } from './fixtures/queued.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * A large header block that arrives in many small pieces must cost time in
 * proportion to its size. Whether that holds is a property of the algorithm,
 * so this test counts bytes instead of timing anything: every Buffer.concat in
 * the process (the server runs in this process) is counted while one message
 * with a 512 KiB header is trickled in 256-byte TCP segments. An accumulator
 * that joins everything received so far on every chunk copies about
 * size² / (2 × chunk) bytes (hundreds of MiB here); a linear one copies the
 * header a few times over at most (smtp-server, the spool and the queue each
 * handle it once).
 */
describe('header accumulation', () => {
  let server: TestServer;
  const originalConcat = Buffer.concat;
  let copied = 0;

  before(async () => {
    server = await startTestServer({ limits: { headerSize: '1MiB', messageSize: '2MiB' } });
    Buffer.concat = function countingConcat(list: readonly Uint8Array[], totalLength?: number): Buffer {
      const joined = originalConcat.call(Buffer, list, totalLength);
      copied += joined.length;
      return joined;
    } as typeof Buffer.concat;
  });
  after(async () => {
    Buffer.concat = originalConcat;
    await server.stop();
  });

  it('copies a trickled 512 KiB header a bounded number of times, not once per chunk', async () => {
    const fields: string[] = [];
    for (let i = 0; fields.join('\r\n').length < 512 * 1024; i++) fields.push(`X-Filler-${i}: ${'x'.repeat(60)}`);
    const header = ['From: trickle@example.org', 'To: postmaster@localhost', 'Subject: a long header', ...fields].join('\r\n');
    const message = `${header}\r\n\r\nbody\r\n`;

    const client = await server.client();
    await client.command('MAIL FROM:<trickle@example.org>');
    await client.command('RCPT TO:<postmaster@localhost>');
    await client.command('DATA', /^354 /);
    copied = 0;
    await client.trickle(message, 256);
    client.write('.\r\n');
    const reply = await client.expect(/^250 /, 30_000);
    const copiedForMessage = copied;
    await client.quit();

    assert.match(reply.raw, /^250 2\.0\.0 /);
    const queued = await queuedMessageFrom(server, 'trickle@example.org');
    assert.ok(queued.includes(`${fields.at(-1)}\r\n\r\nbody\r\n`), 'the whole header block and the body were queued');
    assert.ok(
      copiedForMessage < 10 * message.length,
      `receiving a ${message.length}-byte message copied ${copiedForMessage} bytes in Buffer.concat (${(copiedForMessage / message.length).toFixed(1)}× its size)`,
    );
  });
});

describe('finding the end of the header block', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ limits: { headerSize: 1024 } });
  });
  after(() => server.stop());

  /** Sends `message` in pieces of `piece` bytes; returns the reply to the final dot. */
  async function send(from: string, message: string, piece: number) {
    const client = await server.client();
    await client.command(`MAIL FROM:<${from}>`);
    await client.command('RCPT TO:<postmaster@localhost>');
    await client.command('DATA', /^354 /);
    await client.trickle(message, piece);
    client.write('.\r\n');
    const reply = await client.reply();
    await client.quit();
    return reply;
  }

  it('finds the empty line wherever the pieces split it, and a message that starts with it', async () => {
    for (const piece of [1, 2, 3, 5, 7]) {
      const from = `split${piece}@example.org`;
      const reply = await send(from, `Subject: split ${piece}\r\n\r\nSubject: not a header\r\n`, piece);
      assert.match(reply.raw, /^250 /);
      const queued = await queuedMessageFrom(server, from);
      assert.match(queued, new RegExp(`Subject: split ${piece}\r\n\r\nSubject: not a header\r\n$`), `pieces of ${piece} bytes`);
    }
    const empty = await send('noheader@example.org', '\r\nSubject: this is body\r\n', 1);
    assert.match(empty.raw, /^250 /);
    const queued = await queuedMessageFrom(server, 'noheader@example.org');
    assert.ok(queued.endsWith('\r\n\r\nSubject: this is body\r\n'), 'a message with no header fields keeps its body as body');
  });

  it('accepts a header block of exactly headerSize bytes and refuses one byte more with 552 5.3.4', async () => {
    const block = (bytes: number) => {
      const start = 'Subject: ';
      return `${start}${'h'.repeat(bytes - start.length - 4)}\r\n\r\n`;
    };
    assert.equal(block(1024).length, 1024);
    const fits = await send('fits@example.org', `${block(1024)}body\r\n`, 100);
    assert.match(fits.raw, /^250 /);
    const over = await send('over@example.org', `${block(1025)}body\r\n`, 100);
    assert.equal(over.raw, '552 5.3.4 Message header too large');
  });
});
