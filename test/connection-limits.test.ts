import assert from 'node:assert/strict';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { testCertificate } from './harness/certificates.js';
import { configProblems } from './harness/config-problems.js';
import { eventually } from './harness/eventually.js';
import { SmtpTestClient, sampleMessage } from './harness/smtp-client.js';
import { tempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * What one client may cost a listener, over real sockets from several
 * loopback addresses (127.0.0.0/8 is all loopback on Linux; 127.0.0.x and
 * 127.0.1.x are different /24 networks). The limits are small so the tests
 * are quick; no test asserts a duration other than a configured limit.
 */

/** Opens a connection (over TLS with `tls`) and reads the first reply (220, or 421 when refused). */
async function connect(port: number, localAddress: string, tls?: object): Promise<{ client: SmtpTestClient; greeting: string }> {
  const client = await SmtpTestClient.connect(port, { localAddress, tls });
  const greeting = (await client.reply()).raw;
  return { client, greeting };
}

describe('a share of the listener per client address and network', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      limits: { clients: 10, clientsPerAddress: 3, clientsPerNetwork: 5, clientLimitExceptions: ['127.0.2.9'] },
    });
  });
  after(() => server.stop());

  it('one address holding slow connections cannot lock out another client', async () => {
    const port = server.port();
    // The attacker asks for every slot of the listener and keeps what it gets busy, a byte at a time.
    const attempts = await Promise.all(Array.from({ length: 10 }, () => connect(port, '127.0.0.2')));
    const held = attempts.filter((a) => a.greeting.startsWith('220 '));
    const refused = attempts.filter((a) => !a.greeting.startsWith('220 '));
    assert.equal(held.length, 3, 'clientsPerAddress connections from one address');
    for (const { greeting, client } of refused) {
      assert.equal(greeting, '421 4.7.0 mx.petrel.test Too many connections from your address, try again later');
      await client.waitForClose();
    }
    const trickles = held.map(({ client }) => client.trickle('NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP', 1, 20));

    // A neighbour in the same /24 gets what is left of the network's share.
    const neighbours = await Promise.all(Array.from({ length: 3 }, () => connect(port, '127.0.0.3')));
    assert.deepEqual(
      neighbours.map((n) => n.greeting.split(' ').slice(0, 2).join(' ')).sort(),
      ['220 mx.petrel.test', '220 mx.petrel.test', '421 4.7.0'],
      'clientsPerNetwork connections from one /24',
    );
    assert.ok(neighbours.some((n) => n.greeting.endsWith('Too many connections from your network, try again later')));

    // Anyone else is served as usual, and sends mail.
    const other = await SmtpTestClient.ready(port, { localAddress: '127.0.1.2' });
    const reply = await other.sendMail('someone@example.org', ['postmaster@localhost'], sampleMessage());
    assert.match(reply.raw, /^250 2\.0\.0 /);
    await other.quit();

    const logged = server.logs.find({ limit: 'clientsPerAddress' });
    assert.equal(logged.length, 7, 'one log line per refused connection');
    assert.equal(logged[0].remote, '127.0.0.2');

    for (const { client } of [...held, ...neighbours]) client.close();
    await Promise.all(trickles);
    // The slots come back when the connections close.
    await eventuallyAdmitted(port, '127.0.0.2');
  });

  it('does not count clients in clientLimitExceptions', async () => {
    const port = server.port();
    const all = await Promise.all(Array.from({ length: 6 }, () => connect(port, '127.0.2.9')));
    assert.deepEqual(
      all.map((a) => a.greeting.slice(0, 4)),
      Array(6).fill('220 '),
    );
    for (const { client } of all) client.close();
  });
});

/** A client of `server` that has sent MAIL, RCPT and DATA and got its 354. */
async function dataStarted(server: TestServer, from: string): Promise<SmtpTestClient> {
  const client = await server.client();
  await client.command(`MAIL FROM:<${from}>`);
  await client.command('RCPT TO:<postmaster@localhost>');
  await client.command('DATA', /^354 /);
  return client;
}

/** Connections close asynchronously on the server side; a new one from `address` is admitted soon after. */
async function eventuallyAdmitted(port: number, address: string, tls?: object): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const outcome = await connect(port, address, tls).catch(() => undefined);
    outcome?.client.close();
    if (outcome?.greeting.startsWith('220 ')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`${address} was never admitted again after its connections closed`);
}

describe('total-time limits that a trickle of bytes does not restart', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      // socketTimeout is long: only the total-time limits can close these connections.
      limits: { socketTimeout: '30s', commandTimeout: '500ms', dataTimeout: '500ms', minDataRate: 200, sessionTimeout: '2s' },
      plugins: [
        { path: fixturePlugin('scripted'), options: { hooks: { rcpt: { result: 'next', delayMs: 1000, when: 'slow@localhost' } } } },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
  });
  after(() => server.stop());

  it('closes a connection whose command line does not arrive whole within commandTimeout, though bytes keep coming', async () => {
    const client = await server.client();
    const line = 'MAIL FROM:<a-very-slow-sender-indeed@example.org>\r\n';
    const sent = await client.trickle(line, 1, 50);
    assert.ok(sent < line.length, 'the client was cut off before it finished the line');
    assert.ok(sent >= 3, 'the client kept sending (the idle timeout did not fire)');
    const reply = await client.reply();
    assert.equal(reply.raw, '421 4.4.2 mx.petrel.test No complete command within 500 ms, closing connection');
    await client.waitForClose();
    assert.equal(server.logs.find({ limit: 'commandTimeout' }).length >= 1, true);
  });

  it('does not count the time the server spends (a slow hook) against the client', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<patient@example.org>');
    const reply = await client.command('RCPT TO:<slow@localhost>', /^250 /);
    assert.match(reply.raw, /^250 /, 'answered after the hook took longer than commandTimeout');
    await client.command('RSET');
    await client.quit();
  });

  it('closes a connection whose message does not arrive within dataTimeout (plus minDataRate), and queues nothing', async () => {
    const client = await dataStarted(server, 'trickler@example.org');
    const message = sampleMessage({ body: 'x'.repeat(400) });
    const sent = await client.trickle(message, 2, 50);
    assert.ok(sent < message.length, 'cut off in the middle of the message');
    const reply = await client.reply();
    assert.equal(reply.raw, '421 4.4.2 mx.petrel.test Message not received in the time allowed, closing connection');
    assert.equal((await server.petrel.queue.list({ sender: 'trickler@example.org' })).length, 0);
  });

  it('gives a message that keeps arriving faster than minDataRate the time it needs', async () => {
    const client = await dataStarted(server, 'steady@example.org');
    // 4000 bytes a second, twenty times minDataRate: each piece extends the deadline by a second.
    const message = sampleMessage({ body: 'y'.repeat(3000) });
    await client.trickle(message, 200, 50);
    client.write('.\r\n');
    const reply = await client.reply();
    assert.match(reply.raw, /^250 2\.0\.0 /);
    client.close();
  });

  it('ends a session at sessionTimeout, at the next command, however busy the client keeps it', async () => {
    const client = await server.client();
    let answered = 0;
    let last = '';
    // Without a session limit this would go on for ever; 100 NOOPs is ten seconds, five sessionTimeouts.
    while (answered < 100) {
      // The 421 may arrive between two NOOPs; it is read before the connection counts as closed.
      if (!client.closed) client.send('NOOP');
      last = (await client.reply()).raw;
      if (!last.startsWith('250 ')) break;
      answered++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(last, '421 4.4.2 mx.petrel.test Session time limit of 2 seconds reached, closing connection');
    assert.ok(answered >= 3, `the session was in use until then (${answered} NOOPs answered)`);
  });

  it('lets a message that is arriving when the session time runs out finish, then ends the session', async () => {
    const client = await dataStarted(server, 'late@example.org');
    // About three seconds of steady data, so the session's 2 s run out in the middle of it.
    const message = sampleMessage({ body: 'z'.repeat(12_000) });
    await client.trickle(message, 200, 50);
    client.write('.\r\n');
    assert.match((await client.reply()).raw, /^250 2\.0\.0 /, 'the message is accepted');
    assert.equal((await client.reply()).raw, '421 4.4.2 mx.petrel.test Session time limit of 2 seconds reached, closing connection');
    await client.waitForClose();
  });
});

/** A plain TCP connection from `localAddress` that sends nothing; `closed` turns true when the server closes it. */
async function silentSocket(port: number, localAddress: string): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const opened = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(opened));
    opened.once('error', reject);
  });
  let closed = false;
  socket.on('error', () => undefined);
  socket.once('close', () => (closed = true));
  socket.resume();
  return { socket, closed: () => closed };
}

describe('the implicit TLS handshake', () => {
  it("counts against the client's share while it is in progress, so one address cannot hold every slot with handshakes", async () => {
    const certificate = testCertificate('mx.petrel.test');
    const server = await startTestServer({
      tls: { cert: certificate.certFile, key: certificate.keyFile },
      listeners: [{ name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit' }],
      // Loopback is exempt by default; here it stands for clients on the Internet.
      limits: { clients: 10, clientsPerAddress: 3, clientsPerNetwork: 5, clientLimitExceptions: [] },
    });
    const port = server.port('smtps');
    // The attacker opens every slot of the listener and never starts its TLS handshakes.
    const attacker = await Promise.all(Array.from({ length: 10 }, () => silentSocket(port, '127.0.0.2')));
    try {
      const other = await connect(port, '127.0.1.2', {});
      assert.match(other.greeting, /^220 mx\.petrel\.test /, 'another client still gets its TLS session and greeting');
      other.client.close();
      // The share a handshake took is the connection's own: clientsPerAddress TLS sessions from one address all get in.
      const three = await Promise.all(Array.from({ length: 3 }, () => connect(port, '127.0.1.3', {})));
      assert.deepEqual(
        three.map(({ greeting }) => greeting.slice(0, 4)),
        ['220 ', '220 ', '220 '],
      );
      for (const { client } of three) client.close();

      // The attempts past clientsPerAddress are closed at once (nothing can be written before TLS), and logged.
      await eventually(() => attacker.filter(({ closed }) => closed()).length >= 7, 'the attempts past the share to be closed');
      assert.equal(attacker.filter(({ closed }) => !closed()).length, 3, 'clientsPerAddress handshakes are waited for');
      assert.equal(server.logs.find({ limit: 'clientsPerAddress' }).length, 7);

      // Handshakes that never happened give their share back.
      for (const { socket } of attacker) socket.destroy();
      await eventuallyAdmitted(port, '127.0.0.2', {});
    } finally {
      for (const { socket } of attacker) socket.destroy();
      await server.stop();
    }
  });

  it('must be over within commandTimeout, though bytes keep coming', async () => {
    const certificate = testCertificate('mx.petrel.test');
    const server = await startTestServer({
      tls: { cert: certificate.certFile, key: certificate.keyFile },
      listeners: [{ name: 'smtps', host: '127.0.0.1', port: 0, tls: 'implicit' }],
      limits: { socketTimeout: '30s', commandTimeout: '500ms' },
    });
    try {
      const client = await SmtpTestClient.connect(server.port('smtps'));
      // A TLS record header announcing a 512-byte handshake record: the TLS layer waits for all of it.
      const record = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), Buffer.alloc(512, 1)]);
      const sent = await client.trickle(record, 1, 50);
      assert.ok(sent < record.length, 'cut off before the record was complete');
      assert.ok(sent >= 3, 'the client kept sending (the idle timeout did not fire)');
      await client.waitForClose();
    } finally {
      await server.stop();
    }
  });
});

describe('errors in a session: slow down, then disconnect', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      listeners: [
        { name: 'mx', host: '127.0.0.1', port: 0, tls: 'none' },
        { name: 'strict', host: '127.0.0.1', port: 0, tls: 'none', limits: { hardErrorLimit: 2, softErrorLimit: 1 } },
        { name: 'few', host: '127.0.0.1', port: 0, tls: 'none', limits: { recipients: 2 } },
      ],
      limits: { softErrorLimit: 3, hardErrorLimit: 6, errorDelay: '200ms' },
    });
  });
  after(() => server.stop());

  it('answers a harvester at full speed up to softErrorLimit, waits errorDelay after, and disconnects at hardErrorLimit', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<harvester@example.org>');
    const replies: string[] = [];
    const waited: number[] = [];
    for (let i = 0; i < 100 && !client.closed; i++) {
      const started = Date.now();
      client.send(`RCPT TO:<probe${i}@elsewhere.example>`);
      const reply = await client.reply().catch(() => undefined);
      if (!reply) break;
      waited.push(Date.now() - started);
      replies.push(reply.raw);
      if (reply.code === 421) break;
    }
    assert.equal(replies.filter((r) => r.startsWith('554 5.7.1 ')).length, 6, 'hardErrorLimit errors are answered');
    assert.equal(replies.at(-1), '421 4.7.0 mx.petrel.test Too many errors in this session, closing connection');
    await client.waitForClose();
    // Once softErrorLimit (3) errors were made, every command waited errorDelay first: those that made errors 4, 5 and 6
    // (Postfix's smtpd_chat_reply sleeps while the error count is at least smtpd_soft_error_limit).
    waited.slice(3, 6).forEach((ms, i) => assert.ok(ms >= 190, `the command after ${3 + i} errors waited ${ms} ms`));
    assert.equal(server.logs.find({ limit: 'hardErrorLimit' }).length, 1);
  });

  it('starts counting again after a message is accepted', async () => {
    const client = await server.client();
    await client.command('MAIL FROM:<list@example.org>');
    for (let i = 0; i < 5; i++) await client.command(`RCPT TO:<gone${i}@elsewhere.example>`, /^554 /);
    await client.command('RCPT TO:<postmaster@localhost>');
    await client.command('DATA', /^354 /);
    client.write(sampleMessage());
    client.write('.\r\n');
    await client.expect(/^250 /);
    await client.command('MAIL FROM:<list@example.org>');
    for (let i = 0; i < 5; i++) await client.command(`RCPT TO:<stale${i}@elsewhere.example>`, /^554 /);
    await client.command('RSET');
    await client.quit();
  });

  it('does not count 452 4.5.3 for recipients past limits.recipients: the client sends those in another transaction', async () => {
    const client = await server.client('few');
    // A big message, its recipients pipelined: more answered 452 than hardErrorLimit (6) allows errors.
    const recipients = Array.from({ length: 10 }, (_, i) => `user${i}@localhost`);
    client.write(['MAIL FROM:<list@example.org>', ...recipients.map((to) => `RCPT TO:<${to}>`)].map((line) => `${line}\r\n`).join(''));
    const replies: string[] = [];
    for (let i = 0; i <= recipients.length; i++) replies.push((await client.reply()).raw);
    assert.deepEqual(
      replies.map((reply) => reply.slice(0, 9)),
      ['250 2.1.0', '250 2.1.5', '250 2.1.5', ...Array(8).fill('452 4.5.3')],
    );
    await client.command('DATA', /^354 /);
    client.write(sampleMessage());
    client.write('.\r\n');
    assert.match((await client.reply()).raw, /^250 2\.0\.0 /, 'the message goes to the recipients that were accepted');
    await client.quit();
  });

  it('takes a listener its own limits', async () => {
    const client = await server.client('strict');
    await client.command('MAIL FROM:<harvester@example.org>');
    await client.command('RCPT TO:<one@elsewhere.example>', /^554 /);
    await client.command('RCPT TO:<two@elsewhere.example>', /^554 /);
    await client.expect(/^421 4\.7\.0 /);
    await client.waitForClose();
  });
});

describe('limits in the config', () => {
  const temp = tempDir();
  after(() => temp.remove());
  const base = `server: { hostname: mx.example.test, dataDir: ./data }
listeners:
  - name: mx
    host: 127.0.0.1
    port: 2525
    tls: none
plugins: [{ name: relay-access }, { name: queue-spool }]
`;
  const problems = (text: string) => configProblems(text, join(temp.path, 'mta.config.yaml'));

  it('are on by default: a share per address and network, total-time and error limits', async () => {
    const { configFromObject } = await import('../core/config/load.js');
    const { config } = configFromObject({ listeners: [{ name: 'mx', port: 25, tls: 'none' }] });
    assert.equal(config.limits.clientsPerAddress, 50);
    assert.equal(config.limits.clientsPerNetwork, 100);
    assert.equal(config.limits.commandTimeout, 5 * 60_000, 'RFC 5321 4.5.3.2: at least 5 minutes for a command');
    assert.equal(config.limits.softErrorLimit, 10);
    assert.equal(config.limits.hardErrorLimit, 20);
  });

  it('refuse contradictions at the key to change, top level or per listener', async () => {
    const errors = await problems(base.replace('    tls: none\n', '    tls: none\n    limits: { softErrorLimit: 30 }\n'));
    assert.match(errors, /mta\.config\.yaml:7:\d+ listeners\[0\]\.limits\.softErrorLimit: softErrorLimit \(30\) must not be above hardErrorLimit \(20\)/);
    const session = await problems(`${base}limits: { sessionTimeout: 1m }\n`);
    assert.match(session, /mta\.config\.yaml:8:\d+ limits\.sessionTimeout: sessionTimeout \(1 minute\) is shorter than commandTimeout \(5 minutes\): a session could not finish one message/);
    const zero = await problems(`${base}limits: { commandTimeout: 0 }\n`);
    assert.match(zero, /limits\.commandTimeout: expected a duration above 0/);
    // Past 2^31 - 1 ms Node.js arms a timer for 1 ms instead: a deadline re-checked a thousand times a second.
    const huge = await problems(`${base}limits: { dataTimeout: 30d }\n`);
    assert.match(huge, /limits\.dataTimeout: expected at most 24d/);
    const unknown = await problems(base.replace('    tls: none\n', '    tls: none\n    limits: { clientsPerAdress: 3 }\n'));
    assert.match(unknown, /listeners\[0\]\.limits\.clientsPerAdress: unknown key "clientsPerAdress"/);
  });

  it('warn at start about limits that are allowed but probably not meant', async () => {
    const server = await startTestServer({ limits: { clients: 20, commandTimeout: '1m' } });
    try {
      const warnings = server.logs.find({ code: 'PETREL_LIMITS' }).map((line) => line.msg);
      assert.deepEqual(warnings.sort(), [
        'limits.clientsPerAddress (50) is not below limits.clients (20): one client can take every connection; lower it (0 turns it off)',
        'limits.clientsPerNetwork (100) is not below limits.clients (20): one client can take every connection; lower it (0 turns it off)',
        'limits.commandTimeout (1 minute) is below the 5 minutes RFC 5321 4.5.3.2 asks for; slow clients may be cut off',
      ]);
    } finally {
      await server.stop();
    }
  });
});
