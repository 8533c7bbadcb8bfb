import net from 'node:net';
import type { RunningSystem } from './systems/server-process.js';

const SIZE = 50 * 1024 * 1024;

export interface LargeMessageMemory {
  readonly before: number;
  readonly peakRss: number;
  /** Peak RSS over RSS before: the smaller of the second and third messages'. */
  readonly growth: number;
  /** The same for the first message, which also pays for Node growing its heap and allocator arenas once. */
  readonly firstGrowth: number;
  readonly reply: string;
}

/**
 * Sends a 50 MiB message three times and reports how much the server's
 * resident memory grew. The first message costs any Node process tens of MiB
 * of socket buffers that wait for the garbage collector (the bare
 * smtp-server too); what shows whether the body is held in memory is the
 * later ones, which reuse that memory. A server holding the body grows by 50
 * MiB on every message; one that streams it grows by a few MiB, or by more
 * on one message when the collector happens to run late, so the smaller of
 * the second and third is the figure.
 */
export async function checkLargeMessageMemory(server: RunningSystem): Promise<LargeMessageMemory> {
  const measure = async () => {
    server.resetPeak();
    const before = server.memory().rss;
    const reply = await sendLarge(server.port);
    const peakRss = server.memory().peakRss;
    return { before, peakRss, growth: peakRss - before, reply };
  };
  const first = await measure();
  const second = await measure();
  const third = await measure();
  return { ...(third.growth < second.growth ? third : second), firstGrowth: first.growth };
}

function sendLarge(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const line = `${'y'.repeat(998)}\r\n`;
    const chunk = line.repeat(64);
    let stage = 0;
    let buffer = '';
    const steps = ['EHLO big.bench.test', 'MAIL FROM:<big@bench.test>', 'RCPT TO:<postmaster@localhost>', 'DATA'];
    socket.on('data', async (data: Buffer) => {
      buffer += data.toString('latin1');
      const lines = buffer.split('\r\n');
      buffer = lines.pop() ?? '';
      for (const reply of lines) {
        if (/^\d{3}-/.test(reply)) continue;
        if (stage < steps.length) {
          socket.write(`${steps[stage++]}\r\n`);
        } else if (stage === steps.length) {
          stage++;
          socket.write('Subject: large\r\n\r\n');
          for (let sent = 0; sent < SIZE; sent += chunk.length) {
            if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
          }
          socket.write('.\r\n');
        } else {
          socket.end('QUIT\r\n');
          resolve(reply);
          return;
        }
      }
    });
    socket.on('error', reject);
  });
}
