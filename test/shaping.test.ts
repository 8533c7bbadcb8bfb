import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { systemClock } from '../core/clock.js';
import { configFromObject } from '../core/config/load.js';
import type { DeliveryConfig } from '../core/config/schema.js';
import { ConnectionBackoff } from '../core/delivery/connection-backoff.js';
import type { Admission, DeliveryTicket } from '../core/delivery/destination-line.js';
import { results, type RecipientResult, type Route } from '../core/delivery/outbound.js';
import { OutboundShaper } from '../core/delivery/outbound-shaper.js';
import { ShapingRules } from '../core/delivery/shaping-rules.js';
import { ThrottleReplies } from '../core/delivery/throttle-replies.js';
import { DEFAULT_THROTTLE_REPLIES } from '../core/config/shaping-schema.js';
import { testRedis } from './fixtures/redis.js';
import { configProblems } from './harness/config-problems.js';
import { LogCapture } from './harness/log-capture.js';
import { tempDir } from './harness/temp-dir.js';

/**
 * The parts of outbound shaping on their own: which rule applies to a
 * destination, what counts as "slow down", the back-off arithmetic, and a
 * destination's line (connections, rates, waiting, giving messages back),
 * with real timers and a real Redis for shared rates.
 */

const LISTENERS = [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' }];

/** `delivery:` as the config loader gives it, with `shaping` (and anything else) as given. */
function deliveryConfig(delivery: Record<string, unknown>, redis?: Record<string, unknown>): DeliveryConfig {
  return configFromObject({ listeners: LISTENERS, delivery, ...(redis ? { redis } : {}) }).config.delivery;
}

const route = (destination: string, host?: string): Route => ({ destination, ...(host ? { host } : {}) });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const delivered: RecipientResult[] = [results.delivered('a@remote.test', { code: 250, text: 'ok' })];
const slowDown: RecipientResult[] = [results.deferred('a@remote.test', { code: 421, enhanced: '4.7.0', text: 'Too many connections, slow down' })];

const shapers: OutboundShaper[] = [];
after(async () => {
  for (const shaper of shapers) await shaper.close();
});

function shaper(delivery: Record<string, unknown>, logs = new LogCapture(), redis?: { client: Redis; config: Record<string, unknown> }): OutboundShaper {
  const made = new OutboundShaper({ config: deliveryConfig(delivery, redis?.config), clock: systemClock, log: logs.logger, redis: redis?.client });
  made.start();
  shapers.push(made);
  return made;
}

/** Admits a group to remote.test; `mustStartBy` far off unless given. */
function admit(subject: OutboundShaper, mustStartBy = Date.now() + 3_600_000, destination = 'remote.test'): Promise<Admission> {
  return subject.admit({ target: 'sink-delivery', route: route(destination), mustStartBy });
}

function ticketOf(admission: Admission): DeliveryTicket {
  assert.equal(admission.kind, 'start', `expected to start, got ${JSON.stringify(admission)}`);
  return (admission as Extract<Admission, { kind: 'start' }>).ticket;
}

function laterOf(admission: Admission): number {
  assert.equal(admission.kind, 'later', 'expected to be given back to the queue');
  return (admission as Extract<Admission, { kind: 'later' }>).at;
}

/** Whether a promise has settled by now (after pending callbacks ran). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await sleep(5);
  return done;
}

describe('shaping rules', () => {
  const rules = new ShapingRules(
    deliveryConfig({
      concurrency: { perDestination: 7 },
      shaping: {
        default: { messagesPerConnection: 50, backoff: { pause: '2m' } },
        rules: [
          { name: 'gmail', match: ['gmail.com', 'googlemail.com', '*.google.com'], maxConnections: 5, messagesPerMinute: 120, burst: 10 },
          { match: 'bücher.example', maxConnections: 1, backoff: { recoverAfter: 3 } },
          { match: '*.outlook.com', messagesPerHour: 3600 },
          { match: 'smtp.relay.example', maxConnections: 2 },
        ],
      },
    }).shaping,
    7,
  );

  it('falls back to the default profile, whose connections default to concurrency.perDestination', () => {
    const limits = rules.limitsFor(route('example.org'));
    assert.equal(limits.rule, 'default');
    assert.equal(limits.maxConnections, 7);
    assert.equal(limits.messagesPerConnection, 50);
    assert.deepEqual(limits.rates, []);
    assert.deepEqual(limits.backoff, { pauseMs: 120_000, maxPauseMs: 900_000, recoverAfter: 10 });
  });

  it('matches names exactly, and *.name every name under it but not the name itself', () => {
    assert.equal(rules.limitsFor(route('gmail.com')).rule, 'gmail');
    assert.equal(rules.limitsFor(route('GoogleMail.com.')).rule, 'gmail', 'case and a trailing dot do not matter');
    assert.equal(rules.limitsFor(route('mail.gmail.com')).rule, 'default');
    assert.equal(rules.limitsFor(route('google.com')).rule, 'default');
    assert.equal(rules.limitsFor(route('eu.outlook.com')).rule, '*.outlook.com', 'a rule without a name is named by its first pattern');
  });

  it('matches the MX host when the route names one, so hosted domains share the provider rule', () => {
    assert.equal(rules.limitsFor(route('example.org', 'aspmx.l.google.com')).rule, 'gmail');
    assert.equal(rules.limitsFor(route('smtp.relay.example:587')).rule, 'smtp.relay.example', 'a smarthost destination matches without its port');
  });

  it('compares internationalised names as A-labels', () => {
    assert.equal(rules.limitsFor(route('xn--bcher-kva.example')).maxConnections, 1);
    assert.equal(rules.limitsFor(route('bücher.example')).maxConnections, 1);
  });

  it('lays a rule over the default key by key; a burst keeps the pace with a smaller budget', () => {
    const gmail = rules.limitsFor(route('gmail.com'));
    assert.equal(gmail.maxConnections, 5);
    assert.equal(gmail.messagesPerConnection, 50, 'from the default');
    assert.deepEqual(gmail.rates, [{ name: 'minute', intervalMs: 500, rate: { limit: 10, windowMs: 5_000 } }]);
    assert.equal(gmail.backoff.pauseMs, 120_000, 'from the default');
    const books = rules.limitsFor(route('bücher.example'));
    assert.deepEqual(books.backoff, { pauseMs: 120_000, maxPauseMs: 900_000, recoverAfter: 3 });
    assert.deepEqual(rules.limitsFor(route('eu.outlook.com')).rates, [{ name: 'hour', intervalMs: 1_000, rate: { limit: 3600, windowMs: 3_600_000 } }]);
  });
});

describe('throttle replies', () => {
  const replies = new ThrottleReplies(DEFAULT_THROTTLE_REPLIES);

  it('421 and 4xx replies about load mean slow down', () => {
    assert.equal(replies.isSlowDown({ code: 421, text: 'Service not available' }), true);
    assert.equal(replies.isSlowDown({ code: 450, enhanced: '4.2.1', text: 'The user you are trying to contact is receiving mail at a rate that prevents additional messages' }), true);
    assert.equal(replies.isSlowDown({ code: 451, enhanced: '4.7.500', text: 'Server busy. Please try again later' }), true);
    assert.equal(replies.isSlowDown({ code: 452, text: 'Too many concurrent SMTP connections' }), true);
    assert.equal(replies.isSlowDown({ code: 451, text: 'Messages temporarily deferred due to unexpected volume' }), true);
  });

  it('greylisting, full mailboxes and permanent refusals do not', () => {
    assert.equal(replies.isSlowDown({ code: 451, enhanced: '4.7.1', text: 'Greylisted, please try again later' }), false);
    assert.equal(replies.isSlowDown({ code: 452, enhanced: '4.2.2', text: 'Mailbox full, quota exceeded' }), false);
    assert.equal(replies.isSlowDown({ code: 451, text: 'Temporary local problem - mailbox busy' }), false, 'one locked mailbox is no reason to slow a domain');
    assert.equal(replies.isSlowDown({ code: 550, enhanced: '5.7.1', text: 'Too many recipients' }), false);
    assert.equal(replies.isSlowDown({ code: 451, text: 'Local error: could not generate the index' }), false, '"rate" only as a word');
  });

  it('sums up a delivery: slow down beats answered, answered beats nothing learned', () => {
    assert.equal(replies.feedback([...delivered, ...slowDown]).kind, 'slow-down');
    assert.equal(replies.feedback([results.bounced('b@remote.test', { code: 550, text: 'no such user' })]).kind, 'answered');
    assert.equal(replies.feedback([results.deferred('b@remote.test', { code: 451, enhanced: '4.4.1', text: 'connect failed' })]).kind, 'none');
  });

  it('takes the operator’s patterns instead of the built-in ones', () => {
    const custom = new ThrottleReplies(['4\\.7\\.28']);
    assert.equal(custom.isSlowDown({ code: 450, enhanced: '4.7.28', text: 'unusual rate of unsolicited mail' }), true);
    assert.equal(custom.isSlowDown({ code: 450, text: 'Too many connections' }), false);
    assert.equal(custom.isSlowDown({ code: 421, text: 'closing' }), true, '421 always');
  });
});

describe('connection back-off', () => {
  const settings = { pauseMs: 1_000, maxPauseMs: 3_000, recoverAfter: 2 };

  it('halves the connections in use, pauses, and reacts once per round', () => {
    const backoff = new ConnectionBackoff(8, settings);
    const change = backoff.slowDown(0, 6, 10_000);
    assert.deepEqual(change, { kind: 'slowed', from: 8, to: 3, pausedUntil: 11_000, pauseMs: 1_000 });
    assert.equal(backoff.slowDown(0, 5, 10_001), undefined, 'a delivery that started before the back-off does not slow it again');
    assert.equal(backoff.limit, 3);
    assert.equal(backoff.slowDown(1, 1, 12_000)?.to, 1, 'never below one connection');
    assert.equal(backoff.slowDown(2, 1, 20_000)?.pauseMs, 3_000, 'pauses double while slow-downs keep coming, up to maxPause');
  });

  it('gives one connection back per recoverAfter successes, then forgets the longer pauses', () => {
    const backoff = new ConnectionBackoff(3, settings);
    backoff.slowDown(0, 3, 0);
    backoff.slowDown(1, 1, 1_000);
    assert.equal(backoff.succeeded(0), undefined, 'successes of an older round do not count');
    assert.equal(backoff.succeeded(2), undefined);
    assert.deepEqual(backoff.succeeded(2), { kind: 'recovering', from: 1, to: 2 });
    backoff.succeeded(2);
    assert.deepEqual(backoff.succeeded(2), { kind: 'recovered', from: 2, to: 3 });
    assert.equal(backoff.settled, true);
    assert.equal(backoff.slowDown(2, 3, 5_000)?.pauseMs, 1_000, 'the pause starts short again');
  });

  it('a single-connection destination recovers too', () => {
    const backoff = new ConnectionBackoff(1, settings);
    backoff.slowDown(0, 1, 0);
    assert.equal(backoff.settled, false);
    backoff.succeeded(1);
    assert.deepEqual(backoff.succeeded(1), { kind: 'recovered', from: 1, to: 1 });
  });
});

describe('destination line', () => {
  it('runs at most maxConnections at once and hands connections on first come, first served', async () => {
    const subject = shaper({ shaping: { rules: [{ match: 'remote.test', maxConnections: 2, messagesPerConnection: 20 }] } });
    const first = ticketOf(await admit(subject));
    const second = ticketOf(await admit(subject));
    assert.deepEqual(first.limits, { maxConnections: 2, messagesPerConnection: 20 });
    const order: string[] = [];
    const third = admit(subject).then((a) => (order.push('third'), ticketOf(a)));
    const fourth = admit(subject).then((a) => (order.push('fourth'), ticketOf(a)));
    const other = ticketOf(await admit(subject, undefined, 'other.test'));
    assert.equal(await settled(third), false, 'both wait while two run');
    assert.deepEqual(subject.snapshot().find((line) => line.destination === 'remote.test'), {
      destination: 'remote.test', rule: 'remote.test', running: 2, waiting: 2, connections: 2, maxConnections: 2,
    });
    first.finish(delivered);
    first.finish(delivered); // finishing twice frees one connection only
    (await third).finish(delivered);
    (await fourth).finish(delivered);
    assert.deepEqual(order, ['third', 'fourth']);
    second.finish(delivered);
    other.finish(undefined);
  });

  it('gives a message back, due at its turn, when the rate has no room before maxWait', async () => {
    // 30 a minute, no burst: one every 2 s.
    const subject = shaper({ shaping: { maxWait: '100ms', rules: [{ match: 'remote.test', messagesPerMinute: 30, burst: 1 }] } });
    const now = Date.now();
    ticketOf(await admit(subject)).finish(delivered);
    const second = laterOf(await admit(subject));
    const third = laterOf(await admit(subject));
    assert.ok(second - now >= 1_900 && second - now <= 2_100, `due when the rate has room again: ${second - now} ms`);
    assert.ok(third - second >= 2_000, `messages given back come due one interval apart: ${third - second} ms`);
  });

  it('a waiter whose maxWait runs out in the line is given back, not due again for at least a second', async () => {
    const subject = shaper({ shaping: { maxWait: '100ms', rules: [{ match: 'remote.test', maxConnections: 1 }] } });
    const running = ticketOf(await admit(subject));
    const before = Date.now();
    const at = laterOf(await admit(subject));
    assert.ok(Date.now() - before >= 90, 'it waited in the line first');
    assert.ok(at - Date.now() >= 900, `due again in ${at - Date.now()} ms`);
    running.finish(delivered);
  });

  it('after an idle spell, a burst waits in line instead of being given back for minutes', async () => {
    // Regression: completions from before the pause made each place in line look seconds long,
    // so a burst was given back to the queue spaced by that and the destination drained at a trickle.
    const subject = shaper({ shaping: { maxWait: '2s', rules: [{ match: 'remote.test', maxConnections: 1 }] } });
    for (let i = 0; i < 3; i++) ticketOf(await admit(subject)).finish(delivered);
    await sleep(1_200); // 3 completions, then quiet: a stale estimate of 400 ms per place

    const running = ticketOf(await admit(subject));
    const burst: Promise<Admission>[] = [];
    for (let i = 0; i < 10; i++) {
      burst.push(admit(subject));
      await sleep(5); // each joins the line after the ones before it
    }
    running.finish(delivered);
    for (const admission of burst) {
      const answer = await admission;
      assert.equal(answer.kind, 'start', 'nobody is given back: the line moves at the pace deliveries finish now');
      ticketOf(answer).finish(delivered);
    }
  });

  it('never keeps a message waiting past what its lease can cover', async () => {
    const subject = shaper({ shaping: { rules: [{ match: 'remote.test', maxConnections: 1 }] } });
    const running = ticketOf(await admit(subject));
    const before = Date.now();
    laterOf(await admit(subject, Date.now() + 100)); // maxWait is 30 s, the lease allows 100 ms
    assert.ok(Date.now() - before < 5_000);
    running.finish(delivered);
  });

  it('slows down on 421: fewer connections, a pause, one log line for a round of 421s', async () => {
    const logs = new LogCapture();
    const subject = shaper({ shaping: { rules: [{ match: 'remote.test', maxConnections: 4, backoff: { pause: '300ms', recoverAfter: 1 } }] } }, logs);
    const tickets = await Promise.all([admit(subject), admit(subject), admit(subject), admit(subject)]).then((all) => all.map(ticketOf));
    tickets[0].finish(slowDown);
    const line = () => subject.snapshot().find((l) => l.destination === 'remote.test')!;
    assert.equal(line().connections, 2);
    assert.ok(line().pausedUntil! > Date.now());
    for (const ticket of tickets.slice(1)) ticket.finish(slowDown);
    assert.equal(line().connections, 2, 'the other three were under way already: no further halving');
    const warnings = logs.lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0].msg), /^remote\.test asked us to slow down \(421 4\.7\.0 Too many connections, slow down\): connections 4 → 2, nothing new for 300 ms$/);

    const afterPause = admit(subject);
    assert.equal(await settled(afterPause), false, 'nothing starts during the pause');
    const resumed = ticketOf(await afterPause);
    assert.ok(Date.now() >= (warnings[0].pausedUntil as number) - 5, 'it started when the pause ended');
    assert.deepEqual(resumed.limits, { maxConnections: 2 }, 'targets are told the lowered limit');
    resumed.finish(delivered);
    assert.equal(line().connections, 3, 'one success (recoverAfter: 1) gives a connection back');
  });

  it('lets waiters go at shutdown, due again at once', async () => {
    const subject = shaper({ shaping: { rules: [{ match: 'remote.test', maxConnections: 1 }] } });
    const running = ticketOf(await admit(subject));
    const waiting = admit(subject);
    await sleep(5);
    const before = Date.now();
    await subject.close();
    assert.ok(laterOf(await waiting) <= Date.now() && laterOf(await waiting) >= before - 1);
    assert.ok(laterOf(await admit(subject)) <= Date.now(), 'a closed shaper admits nothing');
    running.finish(delivered);
  });
});

describe('shared rates in Redis', () => {
  let redis: Awaited<ReturnType<typeof testRedis>>;
  const clients: Redis[] = [];
  before(async () => {
    redis = await testRedis();
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    await redis.cleanup();
  });

  async function client(url = redis.url): Promise<Redis> {
    const made = new Redis(url, { keyPrefix: redis.prefix, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    made.on('error', () => undefined);
    clients.push(made);
    if (url === redis.url) await made.connect();
    return made;
  }

  const shared = { shaping: { store: 'redis', maxWait: '100ms', rules: [{ match: 'remote.test', messagesPerMinute: 2 }] } };

  it('two nodes share one budget: 2 a minute means 2 for both together', async () => {
    const nodeA = shaper(shared, new LogCapture(), { client: await client(), config: { url: redis.url } });
    const nodeB = shaper(shared, new LogCapture(), { client: await client(), config: { url: redis.url } });
    ticketOf(await admit(nodeA)).finish(delivered);
    ticketOf(await admit(nodeB)).finish(delivered);
    const at = laterOf(await admit(nodeA));
    assert.ok(at - Date.now() > 20_000, `the third waits for the budget to refill (30 s a message): ${at - Date.now()} ms`);
    laterOf(await admit(nodeB));
    assert.ok((await redis.client.keys(`${redis.prefix}shaping:*`)).length > 0, 'the rate lives under delivery.shaping.keyPrefix');
  });

  it('lets mail through when Redis cannot answer, and says so once', async () => {
    const logs = new LogCapture();
    const subject = shaper(shared, logs, { client: await client('redis://127.0.0.1:1'), config: { url: 'redis://127.0.0.1:1' } });
    for (let i = 0; i < 3; i++) ticketOf(await admit(subject)).finish(delivered);
    const warnings = logs.lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0].msg), /^outbound rate store unavailable \(.*\); message rates are not enforced until it is back$/);
  });
});

describe('shaping configuration errors', () => {
  const temp = tempDir();
  after(() => temp.remove());
  const text = (shaping: string, top = '') => `listeners:
  - { name: mx, host: 127.0.0.1, port: 2525, tls: none }
${top}delivery:
  shaping:
${shaping}
plugins:
  - name: queue-spool
`;
  const problems = (yaml: string) => configProblems(yaml, join(temp.path, 'mta.config.yaml'));

  it('store: redis without a redis: section', async () => {
    assert.match(await problems(text('    store: redis')), /mta\.config\.yaml:5:\d+ delivery\.shaping\.store: store: redis needs a redis: section/);
  });

  it('a pattern that is not a domain, and a reply pattern that is not a regular expression', async () => {
    const message = await problems(text(`    throttleReplies: ['too (many']
    rules:
      - { match: 'user@gmail.com', maxConnections: 2 }`));
    assert.match(message, /delivery\.shaping\.throttleReplies\[0\]: expected a JavaScript regular expression/);
    assert.match(message, /delivery\.shaping\.rules\[0\]\.match: .*a domain or host name like example\.com, or \*\.example\.com/);
  });

  it('a misspelt key', async () => {
    assert.match(await problems(text(`    rules:
      - { match: gmail.com, maxConnection: 2 }`)), /mta\.config\.yaml:6:\d+ delivery\.shaping\.rules\[0\]\.maxConnection: unknown key "maxConnection"/);
  });
});

describe('shaping documentation', () => {
  const doc = readFileSync(join(process.cwd(), 'docs', 'rate-limiting.md'), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map(([, block]) => parse(block) as Record<string, unknown>);

  it('every delivery.shaping example in docs/rate-limiting.md is a valid config', () => {
    const examples = blocks.filter((block) => (block.delivery as { shaping?: unknown } | undefined)?.shaping !== undefined);
    assert.ok(examples.length >= 1);
    for (const example of examples) configFromObject({ listeners: LISTENERS, ...example });
  });

  it('lists the built-in throttleReplies as the code has them', () => {
    const listed = blocks.find((block) => 'throttleReplies' in block);
    assert.deepEqual(listed?.throttleReplies, DEFAULT_THROTTLE_REPLIES);
  });
});
