import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { fixturePlugin } from './fixtures/paths.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer } from './harness/test-server.js';
import { tempDir } from './harness/temp-dir.js';

const examplePlugin = fileURLToPath(new URL('../examples/sender-blocklist/index.js', import.meta.url));

describe('plugin loading', () => {
  it('loads a custom plugin by path (the example from docs/writing-a-plugin.md)', async () => {
    const server = await startTestServer({
      plugins: [
        { path: examplePlugin, options: { domains: ['spam.example'] } },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
    try {
      const client = await server.client();
      const refused = await client.command('MAIL FROM:<bulk@SPAM.example>', /^550 /);
      assert.equal(refused.raw, '550 5.7.1 Mail from your domain is not accepted here');
      const reply = await client.sendMail('friend@example.org', ['postmaster@localhost'], sampleMessage());
      assert.match(reply.raw, /^250 /);
      await client.quit();
      const [queued] = await server.petrel.queue.list();
      const content = await new Response(await server.petrel.queue.read(queued.id) as unknown as ReadableStream).text();
      assert.match(content, /^X-Sender-Checked: sender-blocklist\r\n/);
    } finally {
      await server.stop();
    }
  });

  it('loads a plugin from an npm package (plain JavaScript, no decorators)', async () => {
    const temp = tempDir();
    const pkg = join(temp.path, 'node_modules', 'petrel-plugin-hello');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'petrel-plugin-hello', version: '1.2.3', type: 'module', main: 'index.js' }));
    writeFileSync(
      join(pkg, 'index.js'),
      `export default class Hello {
        static meta = { name: 'hello', version: '1.2.3' };
        static inject = [Symbol.for('petrel.Logger')];
        constructor(log) { this.log = log; }
        register(hooks) {
          hooks.on('helo', (session, helo) => helo.hostname === 'bad.example'
            ? { kind: 'reject', reply: { code: 550, enhanced: '5.7.1', text: 'hello says no' } }
            : { kind: 'next' });
        }
      }\n`,
    );
    const server = await startTestServer(
      { plugins: [{ package: 'petrel-plugin-hello' }, { name: 'relay-access' }, { name: 'queue-spool' }] },
      { baseDir: temp.path },
    );
    try {
      const client = await server.client();
      const reply = await client.command('EHLO bad.example', /^550 /);
      assert.equal(reply.raw, '550 5.7.1 hello says no');
      await client.quit();
      assert.deepEqual(server.petrel.plugins.plugins.map((p) => `${p.name}@${p.version}`), ['hello@1.2.3', 'relay-access@1.0.0', 'queue-spool@1.0.0']);
    } finally {
      await server.stop();
      temp.remove();
    }
  });

  it('runs the lifecycle in order: construct, register, start; close in reverse', async () => {
    const server = await startTestServer({
      plugins: [
        { path: fixturePlugin('scripted') },
        { path: fixturePlugin('scripted-second') },
        { name: 'relay-access' },
        { name: 'queue-spool' },
      ],
    });
    await server.stop();
    const events = server.logs.find({ msg: 'lifecycle' }).map((line) => `${line.lifecycle} ${line.plugin}`);
    assert.deepEqual(events, [
      'construct scripted',
      'construct scripted-second',
      'register scripted',
      'register scripted-second',
      'start scripted',
      'start scripted-second',
      'close scripted-second',
      'close scripted',
    ]);
  });

  it('seals registration after boot: a late hooks.on() throws PETREL_HOOKS_SEALED', async () => {
    const server = await startTestServer({
      plugins: [{ path: fixturePlugin('scripted'), options: { registerLate: true } }, { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    await server.stop();
    const [line] = server.logs.find({ code: 'PETREL_HOOKS_SEALED' });
    assert.match(String(line.msg), /plugin scripted tried to add a rcpt handler after start/);
  });

  it('a plugin that fails to start stops the boot with an error naming it', async () => {
    await assert.rejects(
      startTestServer({
        plugins: [{ path: fixturePlugin('scripted') }, { path: fixturePlugin('scripted-second'), options: { failStart: true } }, { name: 'queue-spool' }],
      }),
      /plugin scripted-second failed to start: cannot open the frobnicator/,
    );
  });

  it('disabled plugins are not loaded', async () => {
    const server = await startTestServer({
      plugins: [{ path: fixturePlugin('scripted'), enabled: false }, { name: 'relay-access' }, { name: 'queue-spool' }],
    });
    await server.stop();
    assert.deepEqual(server.petrel.plugins.plugins.map((p) => p.name), ['relay-access', 'queue-spool']);
  });
});
