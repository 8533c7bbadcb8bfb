import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer, type TestServer } from './harness/test-server.js';

type Step = Record<string, unknown>;

function scripted(hooks: Record<string, Step>, extra: Record<string, unknown> = {}) {
  return { path: fixturePlugin('scripted'), options: { hooks, ...extra } };
}

async function withServer(plugins: unknown[], test: (server: TestServer) => Promise<void>, config: Record<string, unknown> = {}) {
  const server = await startTestServer({ plugins: [...plugins, { name: 'relay-access' }, { name: 'queue-spool' }], ...config });
  try {
    await test(server);
  } finally {
    await server.stop();
  }
}

describe('hook results over SMTP', () => {
  it('reject at RCPT sends the plugin\'s own code, enhanced code and text, once', async () => {
    await withServer([scripted({ rcpt: { result: 'reject', code: 550, enhanced: '5.1.1', text: 'No such user here', when: 'nobody@localhost' } })], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      const reply = await client.command('RCPT TO:<nobody@localhost>', /^550 /);
      assert.equal(reply.raw, '550 5.1.1 No such user here');
      await client.command('RCPT TO:<postmaster@localhost>', /^250 /);
      await client.quit();
    });
  });

  it('defer sends a 4xx with the plugin\'s enhanced code and the session goes on', async () => {
    await withServer([scripted({ mail: { result: 'defer', code: 451, enhanced: '4.7.1', text: 'Greylisted, try again later', when: 'grey@example.org' } })], async (server) => {
      const client = await server.client();
      const reply = await client.command('MAIL FROM:<grey@example.org>', /^451 /);
      assert.equal(reply.raw, '451 4.7.1 Greylisted, try again later');
      await client.command('MAIL FROM:<ok@example.org>', /^250 /);
      await client.quit();
    });
  });

  it('disconnect answers and closes the connection', async () => {
    await withServer([scripted({ helo: { result: 'disconnect', code: 554, enhanced: '5.7.1', text: 'Go away' } })], async (server) => {
      const client = await server.client('mx', { ehlo: 'x' }).catch((error: Error) => error);
      assert.ok(client instanceof Error, 'EHLO must not succeed');
      assert.match(client.message, /554 5\.7\.1 Go away/);
    });
  });

  it('disconnect with 421 closes too', async () => {
    await withServer([scripted({ rcpt: { result: 'disconnect', code: 421, enhanced: '4.7.0', text: 'Too busy' } })], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      const reply = await client.command('RCPT TO:<postmaster@localhost>', /^421 /);
      assert.equal(reply.raw, '421 4.7.0 Too busy');
      await client.waitForClose();
    });
  });

  it('connect reject refuses the session with the plugin reply', async () => {
    await withServer([scripted({ connect: { result: 'reject', code: 554, enhanced: '5.7.1', text: 'Your network is blocked' } })], async (server) => {
      const { SmtpTestClient } = await import('./harness/smtp-client.js');
      const client = await SmtpTestClient.connect(server.port());
      const reply = await client.expect(/^554 /);
      assert.equal(reply.raw, '554 5.7.1 Your network is blocked');
      await client.waitForClose();
    });
  });

  it('accept stops the chain: later plugins of that hook do not run', async () => {
    const second = { path: fixturePlugin('scripted-second'), options: { hooks: {} } };
    await withServer([scripted({ mail: { result: 'accept' } }), second], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      await client.quit();
      const mailCalls = server.logs.find({ hook: 'mail', msg: 'hook called' }).map((line) => line.plugin);
      assert.deepEqual(mailCalls, ['scripted']);
      const heloCalls = server.logs.find({ hook: 'helo', msg: 'hook called' }).map((line) => line.plugin);
      assert.deepEqual(heloCalls, ['scripted', 'scripted-second'], 'next() lets the following plugin run');
    });
  });

  it('plugins run in config order, and a priority on the entry moves a plugin', async () => {
    const plugins = [
      { path: fixturePlugin('scripted'), options: {} },
      { path: fixturePlugin('scripted-second'), options: {} },
      { path: fixturePlugin('scripted-third'), options: {}, priority: 10 },
    ];
    await withServer(plugins, async (server) => {
      const client = await server.client();
      await client.quit();
      const order = server.logs.find({ hook: 'helo', msg: 'hook called' }).map((line) => line.plugin);
      assert.deepEqual(order, ['scripted-third', 'scripted', 'scripted-second']);
    });
  });

  it('a handler that throws gives 451 4.3.0, a log line naming the plugin, and the session goes on', async () => {
    await withServer([scripted({ rcpt: { result: 'throw', text: 'database exploded', when: 'boom@localhost' } })], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      const reply = await client.command('RCPT TO:<boom@localhost>', /^451 /);
      assert.match(reply.raw, /^451 4\.3\.0 /);
      assert.doesNotMatch(reply.raw, /database exploded/, 'internal details stay in the log');
      await client.command('RCPT TO:<postmaster@localhost>', /^250 /);
      const failure = server.logs.find({ code: 'PETREL_HOOK_FAILED', plugin: 'scripted', hook: 'rcpt' });
      assert.equal(failure.length, 1);
      assert.match(String(failure[0].msg), /plugin scripted failed in rcpt hook: database exploded/);
      await client.quit();
    });
  });

  it('a handler that runs past its timeout gives 451 4.3.0 and the session goes on', async () => {
    const plugin = { ...scripted({ mail: { result: 'hang', when: 'slow@example.org' } }), timeouts: { mail: '200ms' } };
    await withServer([plugin], async (server) => {
      const client = await server.client();
      const reply = await client.command('MAIL FROM:<slow@example.org>', /^451 /);
      assert.match(reply.raw, /^451 4\.3\.0 /);
      await client.command('MAIL FROM:<fast@example.org>', /^250 /);
      const failure = server.logs.find({ code: 'PETREL_HOOK_FAILED', plugin: 'scripted', hook: 'mail' });
      assert.match(String(failure[0].msg), /did not answer within 200 ms/);
      await client.quit();
    });
  });

  it('a handler that runs past its timeout is told so through its AbortSignal, and can stop its work', async () => {
    const plugin = { ...scripted({ rcpt: { result: 'until-aborted', when: 'slow@localhost' } }), timeouts: { rcpt: '200ms' } };
    await withServer([plugin], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<sender@example.org>');
      await client.command('RCPT TO:<slow@localhost>', /^451 4\.3\.0 /);
      const [aborted] = server.logs.find({ msg: 'handler aborted', plugin: 'scripted' });
      assert.ok(aborted, 'the handler saw its signal fire');
      assert.equal(aborted.hook, 'rcpt');
      assert.equal(aborted.reason, 'did not answer within 200 ms');
      // A handler that answers in time never sees it fire.
      await client.command('RCPT TO:<postmaster@localhost>', /^250 /);
      assert.equal(server.logs.find({ msg: 'handler aborted' }).length, 1);
      await client.quit();
    });
  });

  it('the per-hook default timeout from the config applies when the plugin sets none', async () => {
    await withServer([scripted({ helo: { result: 'hang' } })], async (server) => {
      const { SmtpTestClient } = await import('./harness/smtp-client.js');
      const client = await SmtpTestClient.connect(server.port());
      await client.expect(/^220 /);
      const reply = await client.command('EHLO client.example', /^451 /);
      assert.match(reply.raw, /^451 4\.3\.0 /);
      await client.quit();
    }, { hooks: { timeouts: { helo: '150ms' } } });
  });

  it('a handler that returns nothing is a plugin bug: 451 and a log line saying so', async () => {
    await withServer([scripted({ mail: { result: 'undefined' } })], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>', /^451 4\.3\.0 /);
      const failure = server.logs.find({ code: 'PETREL_HOOK_FAILED', hook: 'mail' });
      assert.match(String(failure[0].msg), /returned undefined instead of next\(\)/);
      await client.quit();
    });
  });

  it('a hand-written result is checked as the helpers check it: a bad one is a plugin bug (451 and a log line), a good one is answered', async () => {
    const bad: Record<string, [unknown, RegExp]> = {
      'ok@localhost': [{ kind: 'reject', reply: { code: 250, enhanced: '2.0.0', text: 'fine' } }, /SMTP reply code must be 4xx or 5xx, got 250/],
      'temp@localhost': [{ kind: 'defer', reply: { code: 550, enhanced: '5.1.1', text: 'no' } }, /defer\(\) needs a 4xx code, got 550/],
      'mixed@localhost': [{ kind: 'reject', reply: { code: 550, enhanced: '4.1.1', text: 'no' } }, /enhanced status code "4\.1\.1" does not match reply code 550/],
      'noreply@localhost': [{ kind: 'disconnect' }, /a disconnect result needs a reply/],
      'notext@localhost': [{ kind: 'reject', reply: { code: 550, enhanced: '5.1.1' } }, /reply text must be a string/],
      'accept@localhost': [{ kind: 'accept', text: 42 }, /accept\(\) text must be a string/],
      'odd@localhost': [{ kind: 'maybe' }, /returned an object of kind "maybe" instead of next\(\)/],
    };
    const good = { kind: 'reject', reply: { code: 550, enhanced: '5.1.1', text: 'No such user\r\n250 2.0.0 injected' } };
    const rcpt = { ...Object.fromEntries(Object.entries(bad).map(([address, [result]]) => [address, result])), 'good@localhost': good };
    await withServer([{ path: fixturePlugin('raw-results'), options: { rcpt } }], async (server) => {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      for (const [address, [, message]] of Object.entries(bad)) {
        const reply = await client.command(`RCPT TO:<${address}>`, /^\d{3} /);
        assert.match(reply.raw, /^451 4\.3\.0 /, address);
        const [failure] = server.logs.find({ code: 'PETREL_HOOK_FAILED', plugin: 'raw-results', hook: 'rcpt' }).slice(-1);
        assert.match(String(failure.msg), /^plugin raw-results failed in rcpt hook: /);
        assert.match(String(failure.msg), message, address);
      }
      assert.equal((await client.command('RCPT TO:<good@localhost>', /^550 /)).raw, '550 5.1.1 No such user 250 2.0.0 injected');
      await client.command('DATA', /^503 /);
      await client.quit();
    });
  });

  it('reject in the message hook refuses after DATA and nothing is queued', async () => {
    await withServer([scripted({ message: { result: 'reject', code: 554, enhanced: '5.7.1', text: 'Spam detected' } })], async (server) => {
      const client = await server.client();
      const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
      assert.equal(reply.raw, '554 5.7.1 Spam detected');
      assert.equal((await server.petrel.queue.list()).length, 0);
      await client.quit();
    });
  });

  it('defer in the data hook answers 4xx after the message was sent', async () => {
    await withServer([scripted({ data: { result: 'defer', code: 452, enhanced: '4.3.1', text: 'Insufficient system storage' } })], async (server) => {
      const client = await server.client();
      const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
      assert.equal(reply.raw, '452 4.3.1 Insufficient system storage');
      await client.command('NOOP', /^250 /);
      await client.quit();
    });
  });

  it('accept in the queue hook means the plugin took the message: its text, nothing in our queue', async () => {
    await withServer([scripted({ queue: { result: 'accept', text: 'Handed to the archive' } })], async (server) => {
      const client = await server.client();
      const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
      assert.equal(reply.raw, '250 2.0.0 Handed to the archive');
      assert.equal((await server.petrel.queue.list()).length, 0);
      await client.quit();
    });
  });

  it('accept text is cleaned as refusal texts are: one reply line, CR and LF cannot inject a second reply', async () => {
    await withServer([scripted({ queue: { result: 'accept', text: 'Archived\r\n250 2.0.0 injected' } })], async (server) => {
      const client = await server.client();
      const reply = await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
      assert.equal(reply.raw, '250 2.0.0 Archived 250 2.0.0 injected');
      // Had the text been split, the second line would answer this NOOP.
      assert.equal((await client.command('NOOP', /^250 /)).raw, '250 2.0.0 OK');
      await client.quit();
    });
  });

  it('with no plugin accepting, a recipient is refused (secure default)', async () => {
    const server = await startTestServer({ plugins: [{ name: 'queue-spool' }] });
    try {
      const client = await server.client();
      await client.command('MAIL FROM:<a@example.org>');
      const reply = await client.command('RCPT TO:<postmaster@localhost>', /^550 /);
      assert.equal(reply.raw, '550 5.7.1 Recipient address rejected: no policy accepted it');
      await client.quit();
      assert.equal(server.logs.find({ level: 'warn' }).some((l) => /no plugin handles the rcpt hook/.test(String(l.msg))), true);
    } finally {
      await server.stop();
    }
  });

  it('auth with no plugin accepting is 535 5.7.8', async () => {
    await withServer([], async (server) => {
      const client = await server.client();
      const token = Buffer.from('\0user\0password').toString('base64');
      const reply = await client.command(`AUTH PLAIN ${token}`, /^535 /);
      assert.equal(reply.raw, '535 5.7.8 Authentication credentials invalid');
      await client.quit();
    }, { listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', auth: true, insecureAuth: true }] });
  });
});

describe('smtp-server\'s own replies', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('carry exactly one enhanced status code', async () => {
    const client = await server.client();
    const mail = await client.command('MAIL FROM:<a@example.org>');
    assert.equal(mail.raw, '250 2.1.0 Accepted');
    const bad = await client.command('RCPT TO:<not an address>', /^5\d\d /);
    assert.match(bad.raw, /^5\d\d 5\.\d\.\d+ [^0-9]/);
    const noop = await client.command('NOOP');
    assert.equal(noop.raw, '250 2.0.0 OK');
    await client.quit();
  });
});
