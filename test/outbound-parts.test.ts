import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connectFailure, transactionFailure } from '../core/delivery/smtp-client/client-errors.js';
import { ConnectionPool, type PooledConnection } from '../core/delivery/smtp-client/connection-pool.js';
import { DeliveryFailure } from '../core/delivery/smtp-client/delivery-failure.js';
import { ExchangeFailure } from '../plugins/relay-mx/exchange-connector.js';
import { exchangesOf } from '../plugins/relay-mx/exchanges.js';
import { MtaSts } from '../plugins/relay-mx/mta-sts.js';
import { PolicyCache } from '../plugins/relay-mx/mta-sts-cache.js';
import { verdict } from '../plugins/relay-mx/mx-walk.js';
import { FakeDns } from './harness/fake-dns.js';
import { LogCapture } from './harness/log-capture.js';
import { tempDir } from './harness/temp-dir.js';

/** The parts of outbound delivery that can be checked without a server: pool, MX list, verdicts, MTA-STS cache, error mapping. */

const dirs: { remove: () => void }[] = [];
after(() => dirs.forEach((dir) => dir.remove()));

class FakeConnection implements PooledConnection {
  static opened = 0;
  readonly id = ++FakeConnection.opened;
  usable = true;
  transactions = 0;
  closed = false;
  resetAnswer = true;
  async reset(): Promise<boolean> {
    return this.resetAnswer;
  }
  close(): void {
    this.closed = true;
    this.usable = false;
  }
}

const LIMITS = { maxConnections: 2, maxMessagesPerConnection: 3, idleTimeout: 60_000 };

describe('connection pool', () => {
  it('reuses an idle connection, and closes one that has carried its share of messages', async () => {
    const pool = new ConnectionPool<FakeConnection>(LIMITS);
    const first = await pool.acquire('d', async () => new FakeConnection());
    first.transactions = 1;
    pool.release('d', first);
    const again = await pool.acquire('d', async () => new FakeConnection());
    assert.equal(again, first, 'the idle connection came back');
    again.transactions = 3;
    pool.release('d', again);
    assert.equal(again.closed, true, 'closed after maxMessagesPerConnection');
    assert.equal(pool.size('d'), 0);
    pool.close();
  });

  it('makes the next caller wait at maxConnections, and honours per-delivery limits', async () => {
    const pool = new ConnectionPool<FakeConnection>(LIMITS);
    const a = await pool.acquire('d', async () => new FakeConnection());
    await pool.acquire('d', async () => new FakeConnection());
    let third: FakeConnection | undefined;
    const waiting = pool.acquire('d', async () => new FakeConnection()).then((c) => (third = c));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(third, undefined, 'no third connection while two are busy');
    pool.release('d', a);
    await waiting;
    assert.equal(third, a, 'the released connection went to the waiter');
    // A shaped delivery may allow only one connection per destination.
    const shaped = pool.acquire('e', async () => new FakeConnection(), { maxConnections: 1 });
    const held = await shaped;
    const controller = new AbortController();
    const blocked = pool.acquire('e', async () => new FakeConnection(), { maxConnections: 1 }, controller.signal);
    controller.abort(new Error('shutdown'));
    await assert.rejects(blocked, /shutdown/);
    pool.release('e', held, { maxMessagesPerConnection: 0 });
    assert.equal(held.closed, true, 'a per-delivery message limit applies on release');
    pool.close();
  });

  it('closes connections beyond a lowered maxConnections instead of keeping them idle (a destination backing off)', async () => {
    const pool = new ConnectionPool<FakeConnection>({ ...LIMITS, maxConnections: 4 });
    const open = await Promise.all([1, 2, 3].map(() => pool.acquire('d', async () => new FakeConnection())));
    pool.release('d', open[0], { maxConnections: 1 });
    pool.release('d', open[1], { maxConnections: 1 });
    assert.deepEqual(open.slice(0, 2).map((c) => c.closed), [true, true], 'two of three over the new limit of one');
    pool.release('d', open[2], { maxConnections: 1 });
    assert.equal(open[2].closed, false, 'the last one stays for reuse');
    assert.equal(pool.size('d'), 1);
    // A per-call limit above the pool's own does not raise it.
    const generous = await Promise.all([1, 2, 3, 4].map(() => pool.acquire('e', async () => new FakeConnection(), { maxConnections: 9 })));
    let fifth: FakeConnection | undefined;
    const waiting = pool.acquire('e', async () => new FakeConnection(), { maxConnections: 9 }).then((c) => (fifth = c));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(fifth, undefined, 'the pool still opens at most its own 4');
    for (const connection of generous) pool.release('e', connection, { maxConnections: 9 });
    const reused = await waiting;
    assert.ok(generous.includes(reused), 'the waiter got a released connection, not a fifth one');
    pool.release('e', reused, { maxConnections: 9 });
    pool.close();
  });

  it('drops an idle connection that no longer answers, and frees the slot when opening fails', async () => {
    const pool = new ConnectionPool<FakeConnection>({ ...LIMITS, maxConnections: 1 });
    const stale = await pool.acquire('d', async () => new FakeConnection());
    pool.release('d', stale);
    stale.resetAnswer = false;
    const fresh = await pool.acquire('d', async () => new FakeConnection());
    assert.notEqual(fresh, stale);
    assert.equal(stale.closed, true);
    pool.discard('d', fresh);
    await assert.rejects(pool.acquire('d', async () => Promise.reject(new Error('refused'))), /refused/);
    assert.equal(pool.size('d'), 0, 'a failed open does not hold the only slot');
    pool.close();
  });

  it('closes idle connections after idleTimeout', async () => {
    const pool = new ConnectionPool<FakeConnection>({ ...LIMITS, idleTimeout: 10 });
    const connection = await pool.acquire('d', async () => new FakeConnection());
    pool.release('d', connection);
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(connection.closed, true);
    assert.equal(pool.size('d'), 0);
  });
});

describe('MX list', () => {
  const failing = (code: string) => new FakeDns().fail('example.test', code);

  it('orders by priority, shuffles equal ones, drops duplicates and trailing dots', async () => {
    const dns = new FakeDns({
      'example.test': {
        MX: [
          { exchange: 'b.example.test.', priority: 10 },
          { exchange: 'c.example.test', priority: 20 },
          { exchange: 'a.example.test', priority: 10 },
          { exchange: 'A.example.test', priority: 30 },
        ],
      },
    });
    let n = 0;
    const names = (await exchangesOf('example.test', dns, { random: () => [0.9, 0.1, 0.5, 0.2][n++] })).map((e) => e.name);
    assert.deepEqual(names, ['a.example.test', 'b.example.test', 'c.example.test']);
  });

  it('uses the domain itself without MX, an address literal as it is', async () => {
    assert.deepEqual(await exchangesOf('plain.test', new FakeDns({ 'plain.test': { A: ['192.0.2.1'] } })), [{ name: 'plain.test', priority: 0, implicit: true, dnssec: false }]);
    assert.deepEqual(await exchangesOf('[192.0.2.7]', new FakeDns()), [{ name: '192.0.2.7', priority: 0, implicit: true, dnssec: false }]);
    assert.deepEqual(await exchangesOf('[IPv6:2001:db8::7]', new FakeDns()), [{ name: '2001:db8::7', priority: 0, implicit: true, dnssec: false }]);
  });

  it('fails at once for a null MX or a domain that does not exist, later for a DNS failure', async () => {
    const nullMx = new FakeDns({ 'example.test': { MX: [{ exchange: '', priority: 0 }] } });
    await assert.rejects(exchangesOf('example.test', nullMx), (error: DeliveryFailure) => error.permanent && error.reply.code === 556 && error.reply.enhanced === '5.1.10');
    await assert.rejects(exchangesOf('example.test', new FakeDns()), (error: DeliveryFailure) => error.reply.code === 550 && error.reply.enhanced === '5.1.2');
    await assert.rejects(exchangesOf('example.test', failing('ETIMEOUT')), (error: DeliveryFailure) => !error.permanent && error.reply.enhanced === '4.4.3');
    const mixed = new FakeDns({ 'example.test': { MX: [{ exchange: '.', priority: 0 }, { exchange: 'mx.example.test', priority: 10 }] } });
    assert.deepEqual((await exchangesOf('example.test', mixed)).map((e) => e.name), ['mx.example.test'], 'a null MX beside real ones is ignored');
  });
});

describe('MX walk verdict', () => {
  const failure = (kind: ExchangeFailure['kind'], code: number, text: string) => new ExchangeFailure(`mx-${text}`, kind, { code, enhanced: `${String(code)[0]}.4.4`, text });

  it('defers when every MX is outside an enforced MTA-STS policy', () => {
    const result = verdict('d.test', [failure('policy', 451, 'a'), failure('policy', 451, 'b')]);
    assert.equal(result.reply.code, 451);
    assert.match(result.reply.text, /^no MX of d\.test is allowed by its MTA-STS policy \(mode enforce\): mx-a, mx-b$/);
  });

  it('bounces only when every failure is permanent; otherwise defers with the last telling one', () => {
    assert.equal(verdict('d.test', [failure('dns', 550, 'gone'), failure('requiretls', 550, 'no-requiretls')]).reply.text, 'gone');
    assert.equal(verdict('d.test', [failure('network', 451, 'refused'), failure('greeting', 421, 'busy'), failure('dns', 550, 'gone')]).reply.text, 'busy');
    assert.equal(verdict('d.test', [failure('dns', 550, 'gone'), failure('policy', 451, 'outside')]).reply.code, 451, 'a policy refusal keeps it temporary');
  });
});

describe('MTA-STS', () => {
  it('keeps enforce policies on disk across restarts, and writes only on change', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const file = join(dir.path, 'relay-mx', 'mta-sts.json');
    const log = new LogCapture();
    const cache = new PolicyCache(file, log.logger);
    const policy = { id: 'abc', mode: 'enforce' as const, mx: ['mx.d.test'], maxAge: 86_400, expires: new Date(Date.now() + 86_400_000).toISOString() };
    await cache.set('D.test', policy);
    const written = statSync(file).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 15));
    await cache.set('d.test', { ...policy });
    assert.equal(statSync(file).mtimeMs, written, 'the same policy again is no write');
    await cache.set('none.test', { id: false, mode: 'none' });
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(file, 'utf8')) as object), ['d.test'], '"no policy" is not worth a file entry');
    const restarted = new PolicyCache(file, log.logger);
    await restarted.load();
    assert.deepEqual(restarted.get('d.test'), policy);
  });

  it('never fetches a policy from a local address (no requests to internal services)', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const log = new LogCapture();
    const dns = new FakeDns({ '_mta-sts.d.test': { TXT: [['v=STSv1; id=1']] }, 'mta-sts.d.test': { A: ['10.1.2.3'] } });
    const mtaSts = new MtaSts(new PolicyCache(join(dir.path, 'p.json'), log.logger), dns, true, log.logger, 2_000);
    const policy = await mtaSts.policyOf('d.test');
    assert.equal(policy.mode, 'none');
    assert.equal(log.find({ msg: 'MTA-STS policy host resolves to a local address; ignored', ip: '10.1.2.3' }).length, 1);
    assert.deepEqual(mtaSts.judge('d.test', 'mx.anywhere.test', policy), { allowed: true, enforced: false, listed: false });
  });

  it('judges MX names with wildcards the RFC way; testing mode allows and logs', () => {
    const log = new LogCapture();
    const mtaSts = new MtaSts(new PolicyCache('/nonexistent/p.json', log.logger), new FakeDns(), true, log.logger);
    const enforce = { id: '1', mode: 'enforce' as const, mx: ['*.d.test'] };
    assert.deepEqual(mtaSts.judge('d.test', 'mx1.d.test', enforce), { allowed: true, enforced: true, listed: true });
    assert.deepEqual(mtaSts.judge('d.test', 'a.b.d.test', enforce), { allowed: false, enforced: true, listed: false }, 'a wildcard covers one label');
    assert.deepEqual(mtaSts.judge('d.test', 'evil.test', { ...enforce, mode: 'testing' }), { allowed: true, enforced: false, listed: false });
    assert.deepEqual(mtaSts.judge('d.test', 'mx2.d.test', { ...enforce, mode: 'testing' }), { allowed: true, enforced: false, listed: true }, 'testing mode vouches for a listed MX (REQUIRETLS)');
    assert.equal(log.find({ mx: 'evil.test' }).length, 1);
  });
});

describe('SMTP client error mapping', () => {
  it('never turns a connection problem into a bounce', () => {
    const greeting = Object.assign(new Error('Invalid greeting. response=554 5.7.1 go away: 554 5.7.1 go away'), { code: 'EPROTOCOL', response: '554 5.7.1 go away' });
    assert.deepEqual(connectFailure(greeting, 'mx.d.test'), { code: 451, enhanced: '4.4.0', text: 'mx.d.test refused to talk to us: 554 5.7.1 go away', remoteMta: 'mx.d.test' });
    const busy = Object.assign(new Error('x'), { code: 'EPROTOCOL', response: '421 4.7.0 busy' });
    assert.equal(connectFailure(busy, 'mx.d.test').code, 421);
    const login = Object.assign(new Error('Invalid login: 535 5.7.8 no'), { code: 'EAUTH', response: '535 5.7.8 no' });
    assert.match(connectFailure(login, 'relay').text, /^authentication to relay failed: 535 no$/);
    assert.equal(connectFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET' }), 'h').enhanced, '4.4.1');
  });

  it('keeps a server’s reply to a transaction, and knows the two permanent local verdicts', () => {
    assert.equal(transactionFailure(Object.assign(new Error('x'), { code: 'EENVELOPE', response: '550 5.7.1 sender refused' }), 'h').code, 550);
    assert.equal(transactionFailure(Object.assign(new Error('needs REQUIRETLS'), { code: 'EREQUIRETLS' }), 'h').enhanced, '5.7.30');
    assert.equal(transactionFailure(Object.assign(new Error('Message size larger than allowed 1000'), { code: 'EMESSAGE' }), 'h').code, 552);
    assert.equal(transactionFailure(Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' }), 'h').enhanced, '4.4.2');
  });
});
