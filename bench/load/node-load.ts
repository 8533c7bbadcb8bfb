import net from 'node:net';
import type { LoadOptions, LoadResult } from './load-options.js';

/**
 * A load generator with smtp-source's options, for machines without Postfix.
 * Each session sends EHLO, MAIL, RCPT…, DATA and waits for every reply (no
 * pipelining), like smtp-source does.
 */
export async function runNodeLoad(options: LoadOptions): Promise<LoadResult> {
  const body = messageBody(options.size);
  let remaining = options.messages;
  let accepted = 0;
  let failed = 0;
  const take = () => (remaining > 0 ? (remaining--, true) : false);
  const started = process.hrtime.bigint();
  const worker = async () => {
    let session: Session | undefined;
    while (take()) {
      try {
        session ??= await Session.open(options.host, options.port);
        const ok = await session.send(options, body);
        if (ok) accepted++;
        else failed++;
        if (!options.reuse) {
          await session.quit();
          session = undefined;
        }
      } catch {
        failed++;
        session?.destroy();
        session = undefined;
      }
    }
    await session?.quit();
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { generator: 'node', seconds: Number(process.hrtime.bigint() - started) / 1e9, accepted, failed };
}

function messageBody(size: number): string {
  const header = 'From: <loadgen@bench.test>\r\nTo: <postmaster@localhost>\r\nSubject: load\r\n\r\n';
  const line = `${'x'.repeat(78)}\r\n`;
  const lines = Math.max(1, Math.ceil((size - header.length) / line.length));
  return header + line.repeat(lines);
}

class Session {
  #buffer = '';
  #waiting: ((line: string | undefined) => void) | undefined;
  #closed = false;
  #lines: string[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString('latin1');
      let at: number;
      while ((at = this.#buffer.indexOf('\r\n')) !== -1) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 2);
        if (/^\d{3}-/.test(line)) continue;
        const waiter = this.#waiting;
        this.#waiting = undefined;
        if (waiter) waiter(line);
        else this.#lines.push(line);
      }
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#waiting?.(undefined);
    });
    socket.on('error', () => undefined);
  }

  static async open(host: string, port: number): Promise<Session> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    const session = new Session(socket);
    await session.#expect('2');
    await session.#command('EHLO loadgen.bench.test', '2');
    return session;
  }

  async send(options: LoadOptions, body: string): Promise<boolean> {
    if (!(await this.#command(`MAIL FROM:<${options.from}>`, '2'))) return false;
    for (let i = 0; i < options.recipients; i++) {
      const to = options.recipients === 1 ? options.to : `${i + 1}${options.to}`;
      if (!(await this.#command(`RCPT TO:<${to}>`, '2'))) return false;
    }
    if (!(await this.#command('DATA', '3'))) return false;
    this.socket.write(`${body}.\r\n`);
    return this.#expect('2');
  }

  async quit(): Promise<void> {
    this.socket.write('QUIT\r\n');
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  #command(line: string, expected: string): Promise<boolean> {
    this.socket.write(`${line}\r\n`);
    return this.#expect(expected);
  }

  #expect(expected: string): Promise<boolean> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued.startsWith(expected));
    if (this.#closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#waiting = (line) => (line === undefined ? reject(new Error('connection closed')) : resolve(line.startsWith(expected)));
    });
  }
}
