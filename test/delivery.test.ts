import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { eventually, queueEmpty } from './harness/eventually.js';
import { deliveryStatus, parseMime, type ParsedMessage, type StatusFields } from './harness/mime-parts.js';
import { SinkServer, type SinkMessage, type SinkOptions } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';
import { configFromObject } from '../core/config/load.js';
import { createLogger } from '../core/log/logger.js';
import { Petrel } from '../core/petrel.js';

/**
 * The delivery engine end to end: mail goes in over real SMTP, the scheduler
 * delivers it through the sink-delivery fixture to a local sink server that
 * answers as each test scripts it, and DSNs come back through the same queue
 * to the same sink, where the test parses them.
 */

const SENDER = 'sender@origin.test';

interface Setup {
  readonly server: TestServer;
  readonly sink: SinkServer;
}

const running: Setup[] = [];
after(async () => {
  for (const setup of running) {
    await setup.server.stop().catch(() => undefined);
    await setup.sink.close().catch(() => undefined);
  }
});

function deliveryConfig(sinkPort: number, delivery: Record<string, unknown> = {}, extraPlugins: unknown[] = []) {
  return {
    delivery: { retry: ['150ms'], expireAfter: '1m', delayWarningAfter: 0, idlePoll: '1s', ...delivery },
    plugins: [
      { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
      { name: 'queue-spool' },
      ...extraPlugins,
      { path: fixturePlugin('sink-delivery'), options: { port: sinkPort } },
    ],
  };
}

async function setup(sinkOptions: SinkOptions = {}, delivery: Record<string, unknown> = {}, extraPlugins: unknown[] = [], server: Record<string, unknown> = {}): Promise<Setup> {
  const sink = await SinkServer.start(sinkOptions);
  const petrel = await startTestServer({ ...deliveryConfig(sink.port, delivery, extraPlugins), server });
  const made = { server: petrel, sink };
  running.push(made);
  return made;
}

async function send(server: TestServer, to: string[], options: { from?: string; mailArgs?: string; rcptArgs?: Record<string, string>; subject?: string } = {}): Promise<string> {
  const client = await server.client();
  await client.command(`MAIL FROM:<${options.from ?? SENDER}>${options.mailArgs ? ` ${options.mailArgs}` : ''}`);
  for (const rcpt of to) await client.command(`RCPT TO:<${rcpt}>${options.rcptArgs?.[rcpt] ? ` ${options.rcptArgs[rcpt]}` : ''}`);
  await client.command('DATA', /^354 /);
  client.write(sampleMessage({ from: options.from || SENDER, to: to.join(', '), subject: options.subject ?? 'delivery test' }));
  const reply = await client.command('.', /^250 /);
  await client.quit();
  return /queued as (\S+)/.exec(reply.raw)![1];
}

function reportsTo(sink: SinkServer, address: string): SinkMessage[] {
  return sink.messages.filter((m) => m.from === '' && m.to.includes(address));
}

/** The blocks of a DSN's message/delivery-status part: the per-message one, then one per recipient. */
function statusBlocks(dsn: ParsedMessage): StatusFields[] {
  const { message, recipients } = deliveryStatus(dsn);
  return [message, ...recipients];
}

describe('delivery', () => {
  it('delivers a message the sink accepts and removes it from the queue', async () => {
    const { server, sink } = await setup();
    const id = await send(server, ['alice@remote.test']);
    await sink.waitUntil((messages) => messages.length === 1);
    const [message] = sink.messages;
    assert.equal(message.from, SENDER);
    assert.deepEqual(message.to, ['alice@remote.test']);
    assert.match(message.data.toString(), /^Received: from client\.example\.test/m, 'the message goes out with our trace header');
    assert.match(message.data.toString(), /Hello from the Petrel test suite\./);
    await queueEmpty(server);
    const result = server.logs.find({ qid: id, msg: 'delivery delivered' });
    assert.equal(result.length, 1);
    assert.equal(result[0].rcpt, 'alice@remote.test');
    assert.match(String(result[0].reply), /^250 /);
  });

  it('retries after 451 and delivers on the third attempt', async () => {
    const { server, sink } = await setup({ rcpt: (_address, count) => (count <= 2 ? { code: 451, text: '4.7.1 Greylisted, try again' } : undefined) });
    const id = await send(server, ['bob@remote.test']);
    await sink.waitUntil((messages) => messages.length === 1);
    await queueEmpty(server);
    assert.equal(sink.rcptCount('bob@remote.test'), 3);
    const deferred = server.logs.find({ qid: id, msg: 'delivery deferred' });
    assert.equal(deferred.length, 2);
    assert.equal(deferred[0].reply, '451 4.7.1 Greylisted, try again');
    assert.equal(server.logs.find({ qid: id, msg: 'delivery delivered' })[0].attempt, 3);
    assert.equal(reportsTo(sink, SENDER).length, 0, 'no DSN for mail that was delivered in the end');
  });

  it('bounces on 550 with an RFC 3464 report back to the sender', async () => {
    const { server, sink } = await setup({ rcpt: (address) => (address.startsWith('nobody@') ? { code: 550, text: '5.1.1 No such user here' } : undefined) });
    const id = await send(server, ['nobody@remote.test'], { subject: 'will bounce' });
    await sink.waitUntil(() => reportsTo(sink, SENDER).length === 1);
    const dsn = await parseMime(reportsTo(sink, SENDER)[0].data);
    assert.equal(dsn.contentType, 'multipart/report');
    assert.match(dsn.headers, /report-type=delivery-status/);
    assert.match(dsn.headers, /^Auto-Submitted: auto-replied/m);
    assert.match(dsn.headers, /^From: Mail Delivery System <MAILER-DAEMON@mx\.petrel\.test>/m);
    const [perMessage, recipient] = statusBlocks(dsn);
    assert.equal(perMessage['reporting-mta'], 'dns; mx.petrel.test');
    assert.equal(perMessage['x-petrel-queue-id'], id);
    assert.equal(recipient['final-recipient'], 'rfc822; nobody@remote.test');
    assert.equal(recipient.action, 'failed');
    assert.equal(recipient.status, '5.1.1');
    assert.equal(recipient['diagnostic-code'], 'smtp; 550 5.1.1 No such user here');
    assert.match(recipient['remote-mta'], /^dns; 127\.0\.0\.1:\d+$/);
    const original = dsn.parts.find((p) => p.contentType === 'message/rfc822');
    assert.ok(original, 'the whole original comes back (no RET, small message)');
    assert.match(original.body, /^Subject: will bounce/m);
    await queueEmpty(server);
  });

  it('bounces a message still deferred at expiry with status 4.4.7', async () => {
    const { server, sink } = await setup({ rcpt: (address) => (address.startsWith('slow@') ? { code: 451, text: '4.4.1 Try later' } : undefined) }, { expireAfter: '600ms' });
    await send(server, ['slow@remote.test']);
    await sink.waitUntil(() => reportsTo(sink, SENDER).length === 1);
    assert.ok(sink.rcptCount('slow@remote.test') >= 2, 'it was retried before it expired');
    const [, recipient] = statusBlocks(await parseMime(reportsTo(sink, SENDER)[0].data));
    assert.equal(recipient.action, 'failed');
    assert.equal(recipient.status, '4.4.7');
    // The expiry is Petrel's own finding, not a server's reply (RFC 3464 2.3.6).
    assert.match(recipient['diagnostic-code'], /^x-petrel; message expired after 600 ms in the queue; last error: 451 4\.4\.1 Try later/);
    await queueEmpty(server);
  });

  it('never bounces a message from the null sender: the double bounce is dropped with a log line', async () => {
    const { server, sink } = await setup({ rcpt: () => ({ code: 550, text: '5.1.1 No such user' }) });
    const id = await send(server, ['gone@remote.test'], { from: '' });
    await queueEmpty(server);
    assert.equal(sink.messages.length, 0, 'nothing was delivered and no report was generated');
    const dropped = server.logs.find({ qid: id, msg: 'double bounce dropped: a message from the null sender could not be delivered' });
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0].reason, 'no postmaster configured');
  });

  it('sends a double bounce to the configured postmaster, and drops a failing postmaster notice', async () => {
    const { server, sink } = await setup(
      { rcpt: (address) => (address.startsWith('gone@') || address === 'broken-postmaster@ops.test' ? { code: 550, text: '5.1.1 No such user' } : undefined) },
      { bounces: { postmaster: 'postmaster@ops.test' } },
    );
    await send(server, ['gone@remote.test'], { from: '' });
    await sink.waitUntil(() => reportsTo(sink, 'postmaster@ops.test').length === 1);
    const notice = await parseMime(reportsTo(sink, 'postmaster@ops.test')[0].data);
    assert.match(notice.headers, /^Subject: Postmaster Copy: Undelivered Mail Returned to Sender/m);
    assert.equal(statusBlocks(notice)[1]['final-recipient'], 'rfc822; gone@remote.test');
    await queueEmpty(server);
    assert.equal(sink.messages.length, 1);

    // The same server, but the postmaster's own mailbox refuses: the notice is dropped, no loop.
    const second = await setup(
      { rcpt: () => ({ code: 550, text: '5.1.1 No such user' }) },
      { bounces: { postmaster: 'broken-postmaster@ops.test' } },
    );
    await send(second.server, ['gone@remote.test'], { from: '' });
    const deadline = Date.now() + 10_000;
    while (second.server.logs.find({ reason: 'postmaster notice failed' }).length === 0) {
      assert.ok(Date.now() < deadline, 'the failed postmaster notice is logged as dropped');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await queueEmpty(second.server);
    assert.equal(second.sink.messages.length, 0);
  });

  it('handles mixed results in one message: one delivered, one bounced, one delivered after a retry', async () => {
    const { server, sink } = await setup({
      rcpt: (address, count) => {
        if (address.startsWith('bad@')) return { code: 550, text: '5.1.1 Unknown user' };
        if (address.startsWith('later@') && count === 1) return { code: 452, text: '4.2.2 Mailbox full' };
        return undefined;
      },
    });
    await send(server, ['ok@remote.test', 'bad@remote.test', 'later@remote.test']);
    await sink.waitUntil(() => sink.messagesTo('later@remote.test').length === 1 && reportsTo(sink, SENDER).length === 1);
    await queueEmpty(server);
    assert.equal(sink.messagesTo('ok@remote.test').length, 1, 'ok@ was delivered once, not again with the retry');
    assert.deepEqual(sink.messagesTo('later@remote.test')[0].to, ['later@remote.test'], 'the retry carried only the deferred recipient');
    const blocks = statusBlocks(await parseMime(reportsTo(sink, SENDER)[0].data)).slice(1);
    assert.deepEqual(blocks.map((b) => b['final-recipient']), ['rfc822; bad@remote.test'], 'the DSN reports only the failed recipient');
  });

  it('honours NOTIFY, RET, ENVID and ORCPT', async () => {
    // A next hop without DSN: the success is Petrel's to report, as "relayed" (RFC 3461 5.2.2).
    const { server, sink } = await setup({ hideDsn: true, rcpt: (address) => (address.startsWith('bad') ? { code: 550, text: '5.1.1 Unknown user' } : undefined) });
    await send(server, ['bad1@remote.test', 'bad2@remote.test', 'good@remote.test'], {
      mailArgs: 'RET=HDRS ENVID=env+2B42',
      rcptArgs: {
        'bad1@remote.test': 'NOTIFY=FAILURE ORCPT=rfc822;original+2Bone@remote.test',
        'bad2@remote.test': 'NOTIFY=NEVER',
        'good@remote.test': 'NOTIFY=SUCCESS',
      },
      subject: 'dsn parameters',
    });
    await sink.waitUntil(() => reportsTo(sink, SENDER).length === 1);
    await queueEmpty(server);
    assert.equal(reportsTo(sink, SENDER).length, 1, 'one report covers the failure and the success of one attempt');
    const report = await parseMime(reportsTo(sink, SENDER)[0].data);
    assert.match(report.headers, /^Subject: Undelivered Mail Returned to Sender/m);
    const [perMessage, ...recipients] = statusBlocks(report);
    assert.deepEqual(recipients.map((r) => [r['final-recipient'], r.action]), [
      ['rfc822; bad1@remote.test', 'failed'],
      ['rfc822; good@remote.test', 'relayed'],
    ], 'NOTIFY=NEVER leaves bad2 out; NOTIFY=SUCCESS reports good');
    assert.equal(perMessage['original-envelope-id'], 'env+42');
    assert.equal(recipients[0]['original-recipient'], 'rfc822; original+one@remote.test');
    assert.equal(recipients[1].status, '2.0.0');
    const headersOnly = report.parts.find((p) => p.contentType === 'text/rfc822-headers');
    assert.ok(headersOnly, 'RET=HDRS returns the headers only');
    assert.match(headersOnly.body, /^Subject: dsn parameters/m);
    assert.doesNotMatch(headersOnly.body, /Hello from the Petrel test suite/);
  });

  it('sends one delay warning once a recipient has been deferred for delayWarningAfter', async () => {
    const { server, sink } = await setup(
      { rcpt: (_address, count) => (count <= 4 ? { code: 451, text: '4.4.1 Host not reachable' } : undefined) },
      { delayWarningAfter: '300ms' },
    );
    await send(server, ['patient@remote.test']);
    await sink.waitUntil((messages) => messages.some((m) => m.to.includes('patient@remote.test')));
    await queueEmpty(server);
    const warnings = reportsTo(sink, SENDER);
    assert.equal(warnings.length, 1, 'exactly one warning, however many retries');
    const warning = await parseMime(warnings[0].data);
    assert.match(warning.headers, /^Subject: Delayed Mail \(still being retried\)/m);
    const [, recipient] = statusBlocks(warning);
    assert.equal(recipient.action, 'delayed');
    assert.equal(recipient.status, '4.4.1');
    assert.ok(recipient['will-retry-until'], 'says until when it keeps trying');
    assert.ok(warning.parts.some((p) => p.contentType === 'text/rfc822-headers'), 'a delay warning carries only the headers');
  });
});

describe('delivery at shutdown', () => {
  it('lets a delivery in flight finish within the shutdown deadline', async () => {
    let started = false;
    const { server, sink } = await setup({ data: () => { started = true; return new Promise((resolve) => setTimeout(() => resolve(undefined), 300)); } });
    await send(server, ['slow@remote.test']);
    while (!started) await new Promise((resolve) => setTimeout(resolve, 10));
    await server.petrel.stop();
    assert.equal(sink.messages.length, 1);
    assert.equal(server.logs.find({ msg: 'delivery delivered' }).length, 1, 'the outcome was recorded before the server stopped');
    assert.equal(server.logs.lines.filter((l) => /shutdown deadline reached/.test(String(l.msg))).length, 0);
  });

  it('gives a delivery still running at the deadline back to the queue', async () => {
    const data = tempDir('petrel-shutdown-');
    let started = false;
    const { server } = await setup(
      { data: () => { started = true; return new Promise((resolve) => setTimeout(() => resolve(undefined), 3_000)); } },
      {},
      [],
      { dataDir: data.path, shutdownTimeout: '200ms' },
    );
    try {
      const id = await send(server, ['stuck@remote.test']);
      while (!started) await new Promise((resolve) => setTimeout(resolve, 10));
      await server.petrel.stop();
      const [given] = server.logs.lines.filter((l) => /shutdown deadline reached/.test(String(l.msg)));
      assert.ok(given, 'the scheduler said it gave the delivery back');
      assert.deepEqual(given.messages, [id]);
      // What the next start finds: the message, untouched (no attempt recorded).
      const config = configFromObject({
        server: { hostname: 'mx.petrel.test', dataDir: data.path },
        listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
        ...deliveryConfig(1),
      }, data.path);
      const next = await Petrel.build({ config, logger: createLogger({ level: 'silent' }) });
      try {
        const queue = await next.openQueue();
        const [message] = await queue.list();
        assert.equal(message?.id, id);
        assert.equal(message.attempts, 0);
        assert.equal(message.recipients[0].status, 'pending');
      } finally {
        await next.stop();
      }
    } finally {
      data.remove();
    }
  });
});

describe('delivery across a reload', () => {
  it('keeps a replaced delivery plugin open until the delivery it is running has ended', async () => {
    let release = () => undefined as void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    const { server, sink } = await setup({ data: async () => { started = true; await held; return undefined; } });
    const id = await send(server, ['user@remote.test']);
    await eventually(() => started, 'the delivery to reach the sink');
    // The same config but for the delivery plugin's options: the reload replaces that plugin
    // while its delivery waits for the sink's reply.
    const base = deliveryConfig(sink.port);
    const replaced = {
      server: { hostname: 'mx.petrel.test', dataDir: server.dataDir, localDomains: ['localhost'], shutdownTimeout: '2s' },
      listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }],
      dns: { reverseLookup: false },
      ...base,
      plugins: base.plugins.map((entry) => (typeof entry === 'object' && entry !== null && 'path' in entry ? { ...entry, options: { port: sink.port, name: 'replacement.test' } } : entry)),
    };
    await server.petrel.reload(configFromObject(replaced, server.dataDir));
    const [reloaded] = server.logs.find({ msg: 'configuration reloaded' });
    assert.equal(reloaded?.deliveriesOnOld, 1);
    const closed = () => server.logs.find({ msg: 'sink-delivery closed', name: 'petrel.test' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(closed().length, 0, 'the old instance is still delivering: it must not be closed yet');
    release();
    await eventually(() => server.logs.find({ msg: 'delivery delivered', qid: id }).length === 1, 'the delivery to finish');
    await eventually(() => closed().length === 1, 'the old instance to close once its delivery ended');
    assert.equal(sink.messages.length, 1);
  });
});

describe('outbound hooks', () => {
  it('route groups recipients, transform edits the outgoing headers, notifications run', async () => {
    const outbound = {
      path: fixturePlugin('outbound-scripted'),
      options: {
        routes: [{ domain: 'grouped.test', target: 'sink-delivery', destination: 'group-one' }],
        addHeader: { name: 'X-Transformed', value: 'yes' },
      },
    };
    const { server, sink } = await setup({}, {}, [outbound]);
    await send(server, ['a@grouped.test', 'b@grouped.test', 'c@other.test']);
    await sink.waitUntil((messages) => messages.length === 2);
    await queueEmpty(server);
    const grouped = sink.messages.find((m) => m.to.includes('a@grouped.test'))!;
    assert.deepEqual([...grouped.to].sort(), ['a@grouped.test', 'b@grouped.test'], 'one delivery for the routed group');
    assert.deepEqual(sink.messages.find((m) => m.to.includes('c@other.test'))!.to, ['c@other.test']);
    for (const message of sink.messages) assert.match(message.data.toString(), /^X-Transformed: yes\r\n/, 'the transform header is on top');
    // The delivered hook runs after the settle that empties the queue: wait for it, then count.
    const delivered = () => server.logs.find({ hook: 'delivered', msg: 'outbound hook called' });
    await eventually(() => delivered().length > 0, 'the delivered hook to run');
    const stored = delivered();
    assert.equal(stored.length, 1, 'delivered runs once per attempt with all delivered recipients');
    assert.equal((stored[0].rcpt as string[]).length, 3);
  });

  it('a deferred handler moves the retry, a bounced handler suppresses the DSN', async () => {
    const outbound = { path: fixturePlugin('outbound-scripted'), options: { retryAfterMs: 50, suppressDsnFor: 'quiet@remote.test' } };
    const { server, sink } = await setup(
      {
        rcpt: (address, count) => {
          if (address.startsWith('quiet@')) return { code: 550, text: '5.1.1 Unknown user' };
          return count === 1 ? { code: 451, text: '4.3.0 Later' } : undefined;
        },
      },
      { retry: ['1h'] },
      [outbound],
    );
    await send(server, ['quiet@remote.test', 'retry@remote.test']);
    // The schedule says 1h; the deferred hook asked for 50 ms, so the retry comes at once.
    await sink.waitUntil((messages) => messages.some((m) => m.to.includes('retry@remote.test')));
    await queueEmpty(server);
    assert.equal(reportsTo(sink, SENDER).length, 0, 'the bounced hook suppressed the DSN');
    assert.equal(server.logs.find({ hook: 'bounced', msg: 'outbound hook called' })[0].reason, 'rejected');
  });

  it('a route to a target that is not loaded defers the recipient and says why', async () => {
    const outbound = { path: fixturePlugin('outbound-scripted'), options: { routes: [{ domain: 'nowhere.test', target: 'relay-nowhere', destination: 'x' }] } };
    const { server, sink } = await setup({}, { retry: ['1h'] }, [outbound]);
    const id = await send(server, ['a@nowhere.test']);
    const deadline = Date.now() + 5_000;
    while (server.logs.find({ qid: id, msg: 'delivery deferred' }).length === 0) {
      assert.ok(Date.now() < deadline, 'the recipient gets deferred');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const [message] = await server.petrel.queue.list();
    assert.equal(message.recipients[0].status, 'deferred');
    assert.equal(message.recipients[0].lastReply, '451 4.3.5 no delivery target for this route (configuration error)');
    assert.equal(sink.messages.length, 0);
  });
});
