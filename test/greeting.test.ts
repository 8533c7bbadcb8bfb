import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmtpTestClient } from './harness/smtp-client.js';
import { startTestServer } from './harness/test-server.js';

/**
 * Stock smtp-server waits a fixed 100 ms before every greeting. Petrel
 * replaces that pause with its own setting (core/smtp/petrel-smtp-server.ts);
 * these tests fail if an smtp-server upgrade brings the fixed pause back.
 */
describe('greeting delay', () => {
  it('is zero by default: ten connections in a row are each greeted well under 100 ms', async () => {
    const server = await startTestServer();
    try {
      const waits: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const client = await SmtpTestClient.connect(server.port());
        await client.expect(/^220 /);
        waits.push(performance.now() - started);
        client.close();
      }
      waits.sort((a, b) => a - b);
      const median = waits[5];
      // The fixed pause would make every wait >= 100 ms; a loaded CI machine still greets in a few ms.
      assert.ok(median < 60, `median greeting wait ${median.toFixed(1)} ms; smtp-server's 100 ms pause is back?`);
    } finally {
      await server.stop();
    }
  });

  it('when configured, makes the client wait and drops one that talks first', async () => {
    const server = await startTestServer({ listeners: [{ name: 'mx', host: '127.0.0.1', port: 0, tls: 'none', greetingDelay: '300ms' }] });
    try {
      const patient = await SmtpTestClient.connect(server.port());
      const started = performance.now();
      await patient.expect(/^220 /);
      assert.ok(performance.now() - started >= 280, 'the greeting came before the configured delay');
      patient.close();

      const early = await SmtpTestClient.connect(server.port());
      early.send('EHLO too.early.example');
      const reply = await early.reply();
      assert.match(reply.raw, /^421 .*You talk too soon/);
      await early.waitForClose();
    } finally {
      await server.stop();
    }
  });
});
