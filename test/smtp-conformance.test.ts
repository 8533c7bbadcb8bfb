import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { dotStuff, sampleMessage, type SmtpTestClient } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

/**
 * What raw-socket RFC 5321 probes found (issue 13): each test writes the
 * exact bytes a conforming client may send and reads the exact replies.
 */

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

/** Runs `test` against a server of its own with `config`, and stops it. */
async function withOwnServer(config: Record<string, unknown>, test: (own: TestServer) => Promise<void>): Promise<void> {
  const own = await startTestServer(config);
  try {
    await test(own);
  } finally {
    await own.stop();
  }
}

/** MAIL, RCPT and DATA answered; the message body is left to the caller. */
async function openData(client: SmtpTestClient): Promise<void> {
  await client.command('MAIL FROM:<a@example.org>');
  await client.command('RCPT TO:<postmaster@localhost>');
  await client.command('DATA', /^354 /);
}

describe('pipelining after the final dot (RFC 2920 3.1)', () => {
  it('takes the next transaction written in the same packet as the end of the message', async () => {
    const client = await server.client();
    await openData(client);
    client.write(`${dotStuff(sampleMessage())}.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<postmaster@localhost>\r\nDATA\r\n`);
    await client.expect(/^250 2\.0\.0 Ok: queued as /);
    await client.expect(/^250 2\.1\.0 /);
    await client.expect(/^250 2\.1\.5 /);
    await client.expect(/^354 /);
    client.write(`${dotStuff(sampleMessage())}.\r\n`);
    await client.expect(/^250 2\.0\.0 Ok: queued as /);
    await client.quit();
  });

  it('with RSET between the two transactions', async () => {
    const client = await server.client();
    await openData(client);
    client.write(`${dotStuff(sampleMessage())}.\r\nRSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<postmaster@localhost>\r\n`);
    await client.expect(/^250 2\.0\.0 Ok: queued as /);
    await client.expect(/^250 /);
    await client.expect(/^250 2\.1\.0 /);
    await client.expect(/^250 2\.1\.5 /);
    await client.quit();
  });

  it('when the RCPT of the next transaction comes only after the replies were read', async () => {
    const client = await server.client();
    await openData(client);
    client.write(`${dotStuff(sampleMessage())}.\r\nMAIL FROM:<a@example.org>\r\n`);
    await client.expect(/^250 2\.0\.0 Ok: queued as /);
    await client.expect(/^250 2\.1\.0 /);
    await client.command('RCPT TO:<postmaster@localhost>', /^250 2\.1\.5 /);
    await client.command('DATA', /^354 /);
    client.write(`${dotStuff(sampleMessage())}.\r\n`);
    await client.expect(/^250 2\.0\.0 Ok: queued as /);
    await client.quit();
  });
});

describe('the transaction a plugin sees', () => {
  it('is gone after RSET, as after the end of DATA', async () => {
    await withOwnServer({ plugins: [{ path: fixturePlugin('scripted'), options: {} }, { name: 'relay-access' }, { name: 'queue-spool' }] }, async (scripted) => {
      const client = await scripted.client();
      await client.command('MAIL FROM:<a@example.org>');
      await client.command('RSET');
      await client.command('EHLO again.example', /^250 /);
      await client.quit();
      const ehlos = scripted.logs.find({ hook: 'helo', msg: 'hook called' });
      assert.equal(ehlos.length, 2);
      assert.equal(ehlos[1].transaction, undefined, 'no transaction is open after RSET');
    });
  });
});

describe('VRFY and EXPN (RFC 5321 3.5.3, 7.3)', () => {
  it('answer 252 without disclosing anything, and 501 without an argument', async () => {
    const client = await server.client();
    assert.equal((await client.command('VRFY postmaster', /^252 /)).raw, '252 2.5.0 Cannot VRFY user; RCPT TO will tell whether mail for it is accepted');
    assert.equal((await client.command('VRFY nobody-here@localhost', /^252 /)).raw, '252 2.5.0 Cannot VRFY user; RCPT TO will tell whether mail for it is accepted');
    assert.equal((await client.command('EXPN staff', /^252 /)).raw, '252 2.5.0 Cannot EXPN list; RCPT TO will tell whether mail for it is accepted');
    assert.equal((await client.command('VRFY', /^501 /)).raw, '501 5.5.4 Syntax: VRFY address');
    await client.quit();
  });

  it('answer 502 on a listener that disables them', async () => {
    await withOwnServer({ listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', vrfy: 'disabled' }] }, async (disabled) => {
      const client = await disabled.client();
      assert.equal((await client.command('VRFY postmaster', /^502 /)).raw, '502 5.5.1 VRFY command is disabled');
      assert.equal((await client.command('EXPN staff', /^502 /)).raw, '502 5.5.1 EXPN command is disabled');
      await client.command('NOOP');
      await client.quit();
    });
  });
});

/** Sends MAIL FROM … RCPT TO … and a message; returns the queued envelope. */
async function queued(client: SmtpTestClient, mail: string, rcpt: string): Promise<{ from: string; to: string[] }> {
  await client.command(mail, /^250 /);
  await client.command(rcpt, /^250 /);
  await client.command('DATA', /^354 /);
  client.write(`${dotStuff(sampleMessage())}.\r\n`);
  const id = /queued as (\S+)/.exec((await client.expect(/^250 /)).raw)![1];
  const message = await server.petrel.queue.inspect(id);
  assert.ok(message);
  return { from: message.envelope.from, to: message.recipients.map((r) => r.address) };
}

describe('quoted local parts (RFC 5321 4.1.2)', () => {
  it('are accepted in MAIL FROM and RCPT TO, spaces and quoted pairs included, and kept as written', async () => {
    const client = await server.client();
    assert.deepEqual(await queued(client, 'MAIL FROM:<"john doe"@example.org> SIZE=100', 'RCPT TO:<"john doe"@localhost>'), {
      from: '"john doe"@example.org',
      to: ['"john doe"@localhost'],
    });
    assert.deepEqual(await queued(client, 'MAIL FROM:<"Macro Error"@example.org>', 'RCPT TO:<"a \\"quoted\\" \\\\ name"@localhost>'), {
      from: '"Macro Error"@example.org',
      to: ['"a \\"quoted\\" \\\\ name"@localhost'],
    });
    await client.quit();
  });

  it('that need no quotes are kept without them, so "postmaster"@ is postmaster@', async () => {
    const client = await server.client();
    assert.deepEqual(await queued(client, 'MAIL FROM:<"john.doe"@example.org>', 'RCPT TO:<@relay.example:"postmaster"@localhost>'), {
      from: 'john.doe@example.org',
      to: ['postmaster@localhost'],
    });
    await client.quit();
  });

  it('that break the grammar get 501', async () => {
    const client = await server.client();
    for (const path of ['<"unterminated@example.org>', '<"a"b@example.org>', '<"tab\there"@example.org>', '<"a b"@>', '<"a b"@exa mple.org>']) {
      const reply = await client.command(`MAIL FROM:${path}`, /^501 /);
      assert.match(reply.raw, /^501 5\.1\.7 /, path);
    }
    assert.match((await client.command(`MAIL FROM:<"${'x'.repeat(250)}"@example.org>`, /^501 /)).raw, /^501 5\.1\.7 /, 'longer than a path may be');
    await client.command('MAIL FROM:<a@example.org>');
    assert.match((await client.command('RCPT TO:<"no end@localhost>', /^501 /)).raw, /^501 5\.1\.3 /);
    await client.quit();
  });
});

describe('MAIL and RCPT parameters (RFC 5321 4.1.1.11)', () => {
  it('of extensions we did not offer get 555 5.5.4', async () => {
    const client = await server.client();
    assert.equal((await client.command('MAIL FROM:<a@example.org> FOO=BAR', /^555 /)).raw, '555 5.5.4 MAIL FROM parameter FOO not recognized or not implemented');
    assert.match((await client.command('MAIL FROM:<a@example.org> AUTH=<>', /^555 /)).raw, /^555 5\.5\.4 MAIL FROM parameter AUTH /, 'no AUTH offered here');
    await client.command('MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=abc SMTPUTF8');
    assert.equal((await client.command('RCPT TO:<postmaster@localhost> XYZZY', /^555 /)).raw, '555 5.5.4 RCPT TO parameter XYZZY not recognized or not implemented');
    await client.command('RCPT TO:<postmaster@localhost> NOTIFY=FAILURE ORCPT=rfc822;postmaster@localhost');
    await client.quit();
  });

  it('AUTH=<> is known where AUTH is offered', async () => {
    await withOwnServer({ listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }] }, async (submission) => {
      const client = await submission.client();
      await client.command('MAIL FROM:<a@example.org> AUTH=<>');
      await client.quit();
    });
  });
});

describe('non-ASCII addresses (RFC 6531)', () => {
  it('need SMTPUTF8 on MAIL FROM: 553 5.6.7 without it', async () => {
    const client = await server.client();
    assert.equal((await client.command('MAIL FROM:<jörg@example.org>', /^553 /)).raw, '553 5.6.7 Non-ASCII sender address not permitted without the SMTPUTF8 parameter on MAIL FROM');
    assert.match((await client.command('MAIL FROM:<a@bücher.example>', /^553 /)).raw, /^553 5\.6\.7 /, 'a U-label domain too');
    await client.command('MAIL FROM:<a@xn--bcher-kva.example>', /^250 /);
    assert.equal((await client.command('RCPT TO:<jörg@localhost>', /^553 /)).raw, '553 5.6.7 Non-ASCII recipient address not permitted without the SMTPUTF8 parameter on MAIL FROM');
    await client.command('RSET');
    assert.deepEqual(await queued(client, 'MAIL FROM:<jörg@example.org> SMTPUTF8', 'RCPT TO:<"jörg müller"@localhost>'), {
      from: 'jörg@example.org',
      to: ['"jörg müller"@localhost'],
    });
    await client.quit();
  });

  it('that are not UTF-8 are refused, with SMTPUTF8 or without', async () => {
    const client = await server.client();
    const latin1 = (line: string) => Buffer.concat([Buffer.from(line, 'latin1'), Buffer.from('\r\n')]);
    client.write(latin1('MAIL FROM:<j\xf6rg@example.org> SMTPUTF8'));
    assert.match((await client.expect(/^501 /)).raw, /^501 5\.1\.7 /);
    client.write(latin1('MAIL FROM:<j\xf6rg@example.org>'));
    assert.match((await client.expect(/^501 /)).raw, /^501 5\.1\.7 /);
    await client.command('MAIL FROM:<a@example.org> SMTPUTF8');
    client.write(latin1('RCPT TO:<"j\xf6rg"@localhost>'));
    assert.match((await client.expect(/^501 /)).raw, /^501 5\.1\.3 /);
    await client.quit();
  });
});
