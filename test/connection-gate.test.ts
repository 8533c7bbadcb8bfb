import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ConnectionGate } from '../core/util/connection-gate.js';
import { eventually } from './harness/eventually.js';

/**
 * The gate Petrel puts before its listeners between binding the ports and
 * serving them (core/util/connection-gate.ts), on a real server and real
 * client sockets.
 */
describe('ConnectionGate', () => {
  const clients: Socket[] = [];
  after(() => {
    for (const client of clients) client.destroy();
  });

  async function connect(port: number): Promise<Socket> {
    const client = createConnection({ host: '127.0.0.1', port });
    clients.push(client);
    client.on('error', () => undefined);
    await once(client, 'connect');
    return client;
  }

  it('holds connections unread until open(), then hands them over; past its limit it closes them at once', { timeout: 20_000 }, async () => {
    const served: Socket[] = [];
    const received: string[] = [];
    const server = createServer((socket) => {
      served.push(socket);
      socket.on('data', (chunk) => received.push(chunk.toString()));
    });
    const gate = new ConnectionGate(server, { resume: true, maxHeld: 2 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const first = await connect(port);
      first.write('before open');
      await eventually(() => gate.held === 1, 'the first connection to be held');
      await connect(port);
      await eventually(() => gate.held === 2, 'the second connection to be held');

      // A third while two wait: turned away, not held.
      const third = await connect(port);
      await once(third, 'close');
      assert.equal(gate.held, 2);
      assert.deepEqual(served, [], 'nothing was served before open()');
      assert.deepEqual(received, []);

      gate.open();
      assert.equal(served.length, 2, 'the held connections are handed over');
      await eventually(() => received.join('') === 'before open', 'the bytes sent while held to be read');
      // Once open there is no limit of the gate's: the server's own handler decides.
      for (let i = 0; i < 3; i++) await connect(port);
      await eventually(() => served.length === 5, 'later connections to be served');
    } finally {
      for (const socket of served) socket.destroy();
      server.close();
    }
  });
});
