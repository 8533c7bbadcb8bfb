import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration, parseSize } from '../core/config/units.js';
import { MessageHeaders } from '../core/spool/message-headers.js';
import { LineEndingInspector } from '../core/spool/line-ending-inspector.js';
import { NetworkList } from '../core/util/networks.js';

describe('durations and sizes', () => {
  it('parse what operators write', () => {
    assert.equal(parseDuration('100ms'), 100);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('4h'), 14_400_000);
    assert.equal(parseDuration('5d'), 432_000_000);
    assert.equal(parseDuration(250), 250);
    assert.equal(parseDuration('soon'), undefined);
    assert.equal(parseSize('25MiB'), 26_214_400);
    assert.equal(parseSize('10MB'), 10_000_000);
    assert.equal(parseSize('512KiB'), 524_288);
    assert.equal(parseSize(1024), 1024);
    assert.equal(parseSize('lots'), undefined);
  });
});

/** Feeds `chunks` through an inspector and returns what it concluded. */
async function inspect(chunks: string[], maxBytes = 1_000_000) {
  const inspector = new LineEndingInspector({ maxBytes, maxHeaderBytes: 1000 });
  const out = chunks.map((chunk) => inspector.inspect(Buffer.from(chunk)));
  inspector.finish();
  return { inspector, passed: Buffer.concat(out).toString() };
}

describe('line ending inspection', () => {
  it('accepts CRLF split across chunks', async () => {
    const { inspector } = await inspect(['Subject: a\r', '\n\r', '\nbody\r', '\n']);
    assert.equal(inspector.bareLineEnding, false);
    assert.equal(inspector.headerBlock?.toString(), 'Subject: a\r\n\r\n');
  });

  it('finds a bare LF at the start of a chunk', async () => {
    assert.equal((await inspect(['a\r\nb', '\nc\r\n'])).inspector.bareLineEnding, true);
  });

  it('finds a bare CR at the end of a chunk followed by text', async () => {
    assert.equal((await inspect(['a\r', 'b\r\n'])).inspector.bareLineEnding, true);
  });

  it('finds a CR as the very last byte', async () => {
    assert.equal((await inspect(['a\r\nb\r'])).inspector.bareLineEnding, true);
  });

  it('stops passing data on past the size limit but keeps counting', async () => {
    const { inspector, passed } = await inspect(['x'.repeat(60), 'y'.repeat(60)], 100);
    assert.equal(passed.length, 100);
    assert.equal(inspector.bytes, 120);
  });

  it('flags a header block with no end that is larger than allowed', async () => {
    const { inspector } = await inspect([`X-Long: ${'a'.repeat(1200)}`]);
    assert.equal(inspector.headerTooLarge, true);
  });
});

describe('message headers', () => {
  it('leave an unchanged block byte for byte', () => {
    const block = Buffer.from('Subject:  odd   spacing\r\nX-A: 1\r\n\r\n');
    assert.deepEqual(new MessageHeaders(block).toBuffer(), block);
  });

  it('cannot be used to inject a new field', () => {
    const headers = new MessageHeaders(Buffer.from('Subject: x\r\n\r\n'));
    headers.prepend('X-Note', 'one\r\nBcc: victim@example.org');
    headers.prepend('X-Folded', 'part one\r\n\tpart two');
    const text = headers.toBuffer().toString();
    assert.ok(!/^Bcc:/m.test(text), text);
    assert.match(text, /^X-Folded: part one\r\n\tpart two\r\n/);
    assert.deepEqual(headers.get('x-note'), ['one  Bcc: victim@example.org']);
  });

  it('remove only the fields a predicate picks', () => {
    const headers = new MessageHeaders(Buffer.from('Authentication-Results: mx.example; spf=pass\r\nAuthentication-Results: other.example; spf=fail\r\n\r\n'));
    assert.equal(headers.removeWhere('authentication-results', (value) => value.startsWith('mx.example;')), 1);
    assert.deepEqual(headers.get('Authentication-Results'), ['other.example; spf=fail']);
  });

  it('decode UTF-8 header values', () => {
    const headers = new MessageHeaders(Buffer.from('Subject: grüße\r\n\r\n', 'utf8'));
    assert.equal(headers.getFirst('subject'), 'grüße');
  });

  it('read a first field that mailsplit would take for an mbox or HTTP line, and write it once', () => {
    // RFC 5322 4.5 (obsolete syntax): white space before the colon; readers take it as From.
    const block = 'From : Bob\r\n <bob@example.org>\r\nFrom: alice@example.org\r\n\r\n';
    const headers = new MessageHeaders(Buffer.from(block));
    assert.deepEqual(headers.get('From'), ['Bob <bob@example.org>', 'alice@example.org']);
    assert.deepEqual(new MessageHeaders(Buffer.from(block)).toBuffer().toString(), block, 'unchanged, byte for byte');
    headers.prepend('Received', 'from client');
    assert.equal(headers.toBuffer().toString(), `Received: from client\r\n${block}`);
    assert.deepEqual(new MessageHeaders(Buffer.from('POST /x: y\r\n\r\n')).list(), [{ name: 'POST /x', value: 'y' }]);
  });
});

describe('network lists', () => {
  it('match IPv4, IPv6 and IPv4-mapped addresses', () => {
    const list = new NetworkList(['192.0.2.0/24', '2001:db8::/32', '127.0.0.1']);
    assert.equal(list.contains('192.0.2.77'), true);
    assert.equal(list.contains('::ffff:192.0.2.77'), true);
    assert.equal(list.contains('192.0.3.1'), false);
    assert.equal(list.contains('2001:db8:1::5'), true);
    assert.equal(list.contains('2001:db9::1'), false);
    assert.equal(list.contains('127.0.0.1'), true);
    assert.equal(list.contains('127.0.0.2'), false);
    assert.throws(() => new NetworkList(['10.0.0.0/33']), /not an IPv4 or IPv6 network/);
  });
});
