import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeDns } from './harness/fake-dns.js';
import { sampleMessage } from './harness/smtp-client.js';
import { startTestServer } from './harness/test-server.js';

async function receivedLine(dns: FakeDns, reverseLookup: boolean): Promise<string> {
  const server = await startTestServer({ dns: { reverseLookup } }, { dns });
  try {
    for (let i = 0; i < 2; i++) {
      const client = await server.client();
      await client.sendMail('a@example.org', ['postmaster@localhost'], sampleMessage());
      await client.quit();
    }
    const [message] = await server.petrel.queue.list();
    const chunks: Buffer[] = [];
    for await (const chunk of await server.petrel.queue.read(message.id)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString().split('\r\n')[0];
  } finally {
    await server.stop();
  }
}

describe('reverse DNS of the client', () => {
  it('uses a forward-confirmed name, looked up once per TTL through the injected resolver', async () => {
    const dns = new FakeDns({ 'client.example.test': { A: ['127.0.0.1'] } }).setReverse('127.0.0.1', ['client.example.test']);
    assert.equal(await receivedLine(dns, true), 'Received: from client.example.test (client.example.test [127.0.0.1])');
    assert.deepEqual(dns.queries, ['PTR 127.0.0.1', 'A client.example.test'], 'the second connection is answered from the cache');
  });

  it('ignores a PTR name that does not resolve back to the address', async () => {
    const dns = new FakeDns({ 'forged.example.test': { A: ['192.0.2.1'] } }).setReverse('127.0.0.1', ['forged.example.test']);
    assert.equal(await receivedLine(dns, true), 'Received: from client.example.test (unknown [127.0.0.1])');
  });

  it('can be switched off: no lookups at all', async () => {
    const dns = new FakeDns().setReverse('127.0.0.1', ['client.example.test']);
    assert.equal(await receivedLine(dns, false), 'Received: from client.example.test (unknown [127.0.0.1])');
    assert.deepEqual(dns.queries, []);
  });
});
