import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Headers } from 'mailsplit';
import { queueEmpty } from './harness/eventually.js';
import { deliveryStatus, parseMime, type ParsedMessage } from './harness/mime-parts.js';
import { MxWorld } from './harness/mx-world.js';
import type { SinkMessage, SinkServer } from './harness/sink-server.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * Delivery status notifications when Petrel relays (RFC 3461 5.2, RFC 3464):
 * mail goes in over SMTP and out through relay-mx to MX hosts that are local
 * sinks, with or without the DSN extension; the reports come back to the
 * sender's own MX (another sink), where they are parsed with mailsplit.
 */

const SENDER = 'sender@origin.test';
/** RFC 5322 3.3 date-time in UTC, the way DSNs must write dates (`+0000`, not `GMT`). */
const RFC5322_UTC = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000$/;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function world(): Promise<{ world: MxWorld; origin: SinkServer }> {
  const made = new MxWorld();
  cleanups.push(() => made.close());
  const origin = await made.host('mx.origin.test');
  made.domain('origin.test', [['mx.origin.test', 10]]);
  return { world: made, origin };
}

async function petrel(made: MxWorld, delivery: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startTestServer(
    {
      delivery: { retry: ['1h'], delayWarningAfter: 0, idlePoll: '1s', ...delivery },
      plugins: [
        { name: 'relay-access', options: { relayNetworks: ['127.0.0.0/8'] } },
        { name: 'queue-spool' },
        { name: 'relay-mx', options: made.relayMxOptions() },
      ],
    },
    { dns: made.dns },
  );
  cleanups.push(() => server.stop());
  return server;
}

/** Sends one message with per-recipient RCPT parameters (`NOTIFY=... ORCPT=...`). */
async function send(server: TestServer, recipients: Record<string, string>, mailArgs = ''): Promise<string> {
  const client = await server.client();
  await client.command(`MAIL FROM:<${SENDER}>${mailArgs ? ` ${mailArgs}` : ''}`);
  for (const [address, args] of Object.entries(recipients)) await client.command(`RCPT TO:<${address}>${args ? ` ${args}` : ''}`);
  await client.command('DATA', /^354 /);
  client.write(sampleMessage({ from: SENDER, to: Object.keys(recipients).join(', '), subject: 'dsn relaying' }));
  const reply = await client.command('.', /^250 /);
  await client.quit();
  return /queued as (\S+)/.exec(reply.raw)![1];
}

function reports(origin: SinkServer): SinkMessage[] {
  return origin.messages.filter((m) => m.from === '' && m.to.includes(SENDER));
}

function headerOf(message: ParsedMessage, key: string): string {
  return new Headers(message.headers).getFirst(key);
}

describe('DSNs when relaying', () => {
  it('reports a success at a next hop without DSN as "relayed" (RFC 3461 5.2.2), dates in +0000 form', async () => {
    const { world: made, origin } = await world();
    const host = await made.host('mx.nodsn.test', { hideDsn: true });
    made.domain('nodsn.test', [['mx.nodsn.test', 10]]);
    const server = await petrel(made);
    await send(server, { 'alice@nodsn.test': 'NOTIFY=SUCCESS' });
    await origin.waitUntil(() => reports(origin).length === 1);
    await queueEmpty(server);
    assert.deepEqual(host.messages[0].dsn['alice@nodsn.test'], {}, 'a server without DSN gets no NOTIFY');

    const report = await parseMime(reports(origin)[0].data);
    assert.equal(headerOf(report, 'subject'), 'Successful Mail Delivery Report');
    assert.match(headerOf(report, 'date'), RFC5322_UTC);
    const { message, recipients } = deliveryStatus(report);
    assert.match(message['arrival-date'], RFC5322_UTC);
    assert.equal(recipients.length, 1);
    const [alice] = recipients;
    assert.equal(alice['final-recipient'], 'rfc822; alice@nodsn.test');
    assert.equal(alice.action, 'relayed', 'not "delivered": the next hop will not report final delivery');
    assert.equal(alice.status, '2.0.0');
    assert.equal(alice['remote-mta'], 'dns; mx.nodsn.test');
    assert.match(alice['diagnostic-code'], /^smtp; 250 /, 'the server\'s own reply');
    assert.match(alice['last-attempt-date'], RFC5322_UTC);
    const human = report.parts.find((p) => p.contentType === 'text/plain');
    assert.match(human!.decoded.toString(), /<alice@nodsn\.test>: relayed to mx\.nodsn\.test/);
  });

  it('passes NOTIFY and each recipient\'s own ORCPT to a next hop with DSN, and leaves the success report to it', async () => {
    const { world: made, origin } = await world();
    const host = await made.host('mx.dsn.test', { rcpt: (address) => (address.startsWith('gone@') ? { code: 550, text: '5.1.1 No such user' } : undefined) });
    made.domain('dsn.test', [['mx.dsn.test', 10]]);
    const server = await petrel(made);
    await send(
      server,
      {
        'ann@dsn.test': 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ann.original@dsn.test',
        'bob@dsn.test': 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob.original@dsn.test',
        'gone@dsn.test': 'NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;gone.original@dsn.test',
      },
      'RET=HDRS ENVID=envelope-1',
    );
    await origin.waitUntil(() => reports(origin).length === 1);
    await queueEmpty(server);

    // RFC 3461 4.1-4.2: NOTIFY and ORCPT go on, per recipient.
    assert.deepEqual(host.messagesTo('ann@dsn.test')[0].dsn['ann@dsn.test'], { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;ann.original@dsn.test' });
    assert.deepEqual(host.messagesTo('bob@dsn.test')[0].dsn['bob@dsn.test'], { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;bob.original@dsn.test' });
    assert.deepEqual(host.messages[0].envelopeDsn, { ret: 'HDRS', envid: 'envelope-1' });
    assert.equal(new Set(host.messages.map((m) => m.connection)).size, 1, 'one connection carries the transactions');

    assert.equal(reports(origin).length, 1, 'one report: the failure; the successes are the next hop\'s to report');
    const { message, recipients } = deliveryStatus(await parseMime(reports(origin)[0].data));
    assert.equal(message['original-envelope-id'], 'envelope-1');
    assert.deepEqual(
      recipients.map((r) => [r['original-recipient'], r['final-recipient'], r.action, r.status]),
      [['rfc822; gone.original@dsn.test', 'rfc822; gone@dsn.test', 'failed', '5.1.1']],
    );
    assert.equal(recipients[0]['diagnostic-code'], 'smtp; 550 5.1.1 No such user');
  });

  it('sends one transaction to a next hop without DSN whatever the recipients\' ORCPTs', async () => {
    const { world: made } = await world();
    const host = await made.host('mx.nodsn.test', { hideDsn: true });
    made.domain('nodsn.test', [['mx.nodsn.test', 10]]);
    const server = await petrel(made);
    await send(server, { 'ann@nodsn.test': 'ORCPT=rfc822;ann.original@nodsn.test', 'bob@nodsn.test': 'NOTIFY=FAILURE ORCPT=rfc822;bob.original@nodsn.test' });
    await host.waitUntil((messages) => messages.length === 1);
    await queueEmpty(server);
    assert.equal(host.messages.length, 1);
    assert.deepEqual(host.messages[0].to, ['ann@nodsn.test', 'bob@nodsn.test']);
  });

  it('NOTIFY=DELAY passed on: a delay warning while Petrel holds the message, nothing once a DSN server took it', async () => {
    const { world: made, origin } = await world();
    // Busy for four attempts (at least 450 ms with 150 ms between them), so some deferral falls after the 300 ms warning time.
    const host = await made.host('mx.slow.test', { rcpt: (_address, count) => (count <= 4 ? { code: 451, text: '4.3.2 Busy, try again' } : undefined) });
    made.domain('slow.test', [['mx.slow.test', 10]]);
    const server = await petrel(made, { retry: ['150ms'], delayWarningAfter: '300ms' });
    await send(server, { 'patient@slow.test': 'NOTIFY=DELAY,SUCCESS' });
    await host.waitUntil((messages) => messages.length === 1);
    await queueEmpty(server);
    assert.deepEqual(host.messages[0].dsn['patient@slow.test'].notify, ['DELAY', 'SUCCESS']);
    assert.equal(reports(origin).length, 1, 'the delay warning only; the success is the next hop\'s to report');
    const { recipients } = deliveryStatus(await parseMime(reports(origin)[0].data));
    assert.equal(recipients[0].action, 'delayed');
    assert.equal(recipients[0]['diagnostic-code'], 'smtp; 451 4.3.2 Busy, try again');
    assert.match(recipients[0]['will-retry-until'], RFC5322_UTC);
  });

  it('writes no "smtp;" diagnostic for what no server said: no such domain, no route (RFC 3464 2.3.6)', async () => {
    const { world: made, origin } = await world();
    await made.deadHost('mx.dead.test');
    made.domain('dead.test', [['mx.dead.test', 10]]);
    const server = await petrel(made, { retry: ['150ms'], delayWarningAfter: '300ms' });
    await send(server, { 'nobody@nxdomain.test': '' });
    await origin.waitUntil(() => reports(origin).length === 1);
    const bounce = deliveryStatus(await parseMime(reports(origin)[0].data)).recipients[0];
    assert.equal(bounce.action, 'failed');
    assert.equal(bounce.status, '5.1.2');
    assert.match(bounce['diagnostic-code'], /^x-petrel; domain nxdomain\.test does not exist/);
    assert.equal(bounce['remote-mta'], undefined, 'no server was involved');

    await send(server, { 'someone@dead.test': '' });
    await origin.waitUntil(() => reports(origin).length === 2);
    const delay = deliveryStatus(await parseMime(reports(origin)[1].data)).recipients[0];
    assert.equal(delay.action, 'delayed');
    assert.equal(delay.status, '4.4.1');
    assert.match(delay['diagnostic-code'], /^x-petrel; connect to mx\.dead\.test failed/);
  });
});
