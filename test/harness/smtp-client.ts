import net from 'node:net';
import tls from 'node:tls';

/** One SMTP reply: the code, and every line's text after `code-`/`code `. */
export interface Reply {
  readonly code: number;
  readonly lines: readonly string[];
  /** The whole reply as received, lines joined with \n. */
  readonly raw: string;
}

/**
 * A deliberately simple SMTP client for tests: it sends exactly the bytes it
 * is told and reads replies line by line, so a test can assert the exact
 * wire format (`550 5.7.1 ...`), send bare LFs, or pipeline commands. Use it
 * like maddy's tests: `await client.expect(/^250 /)`.
 */
export class SmtpTestClient {
  #socket: net.Socket | tls.TLSSocket;
  #buffer = '';
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #closed = false;
  /** Every line received, for debugging a failed test. */
  readonly transcript: string[] = [];

  private constructor(socket: net.Socket | tls.TLSSocket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  /**
   * Connects and returns once the socket is open (the greeting is not read).
   * `localAddress` picks the client's address, e.g. 127.0.0.2, to appear as
   * another client (any 127.x address works on loopback).
   */
  static connect(port: number, options: { host?: string; localAddress?: string; tls?: tls.ConnectionOptions } = {}): Promise<SmtpTestClient> {
    const host = options.host ?? '127.0.0.1';
    const localAddress = options.localAddress;
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? // tls.connect hands localAddress on to its TCP socket; its option type omits it.
          tls.connect({ host, port, localAddress, rejectUnauthorized: false, servername: 'localhost', ...options.tls } as tls.ConnectionOptions, () =>
            resolve(new SmtpTestClient(socket)),
          )
        : net.connect({ host, port, localAddress }, () => resolve(new SmtpTestClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects, reads the 220 greeting and sends EHLO; returns the EHLO reply. */
  static async ready(port: number, options: { host?: string; localAddress?: string; tls?: tls.ConnectionOptions; ehlo?: string } = {}): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(port, options);
    await client.expect(/^220 /);
    await client.command(`EHLO ${options.ehlo ?? 'client.example.test'}`, /^250[ -]/);
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get secure(): boolean {
    return this.#socket instanceof tls.TLSSocket;
  }

  /** The CN of the certificate the server presented, once TLS is up. */
  peerCertificateName(): string | undefined {
    if (!(this.#socket instanceof tls.TLSSocket)) return undefined;
    const cn = this.#socket.getPeerCertificate().subject?.CN;
    return Array.isArray(cn) ? cn[0] : cn;
  }

  /** Sends raw bytes, exactly as given. */
  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /**
   * Sends `data` in pieces of `pieceBytes`, each in its own TCP segment (no Nagle), waiting
   * `pauseMs` after each: a slow or hostile client. Stops early, without an error, when the
   * server closes the connection; resolves to the number of bytes sent.
   */
  async trickle(data: string | Buffer, pieceBytes: number, pauseMs = 0): Promise<number> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const socket = this.#socket;
    socket.setNoDelay(true);
    let sent = 0;
    while (sent < bytes.length && !this.#closed) {
      const piece = bytes.subarray(sent, sent + pieceBytes);
      await new Promise<void>((resolve) => socket.write(piece, () => resolve()));
      sent += piece.length;
      await new Promise((resolve) => (pauseMs > 0 ? setTimeout(resolve, pauseMs) : setImmediate(resolve)));
    }
    return sent;
  }

  /** Sends a command line (CRLF is added). */
  send(line: string): void {
    this.write(`${line}\r\n`);
  }

  /** Reads the next complete reply (all continuation lines). */
  async reply(timeoutMs = 5000): Promise<Reply> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.#nextLine(timeoutMs);
      lines.push(line);
      if (!/^\d{3}-/.test(line)) break;
    }
    const last = lines[lines.length - 1];
    return { code: Number(last.slice(0, 3)), lines: lines.map((l) => l.slice(4)), raw: lines.join('\n') };
  }

  /** Reads a reply and checks its last line against `pattern`; throws with the transcript otherwise. */
  async expect(pattern: RegExp, timeoutMs = 5000): Promise<Reply> {
    const reply = await this.reply(timeoutMs);
    const last = reply.raw.split('\n').pop() as string;
    if (!pattern.test(last)) {
      throw new Error(`expected a reply matching ${pattern}, got:\n${reply.raw}\n--- transcript ---\n${this.transcript.join('\n')}`);
    }
    return reply;
  }

  /** Sends a command and expects a reply matching `pattern`. */
  async command(line: string, pattern: RegExp = /^2\d\d /): Promise<Reply> {
    this.send(line);
    return this.expect(pattern);
  }

  /** STARTTLS and the TLS handshake; EHLO must be sent again afterwards. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<void> {
    await this.command('STARTTLS', /^220 /);
    const plain = this.#socket;
    plain.removeAllListeners('data');
    await new Promise<void>((resolve, reject) => {
      const secure = tls.connect({ socket: plain, rejectUnauthorized: false, servername: 'localhost', ...options }, () => resolve());
      secure.once('error', reject);
      this.#socket = secure;
      this.#attach(secure);
    });
  }

  /** MAIL, RCPTs, DATA and the message; returns the reply to the final dot. */
  async sendMail(from: string, to: readonly string[], message: string): Promise<Reply> {
    await this.command(`MAIL FROM:<${from}>`);
    for (const rcpt of to) await this.command(`RCPT TO:<${rcpt}>`);
    await this.command('DATA', /^354 /);
    this.write(dotStuff(message));
    this.write('.\r\n');
    return this.reply();
  }

  /** Waits until the server closes the connection. */
  async waitForClose(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('server did not close the connection')), timeoutMs);
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async quit(): Promise<void> {
    if (this.#closed) return;
    this.send('QUIT');
    await this.waitForClose().catch(() => this.close());
  }

  close(): void {
    this.#socket.destroy();
  }

  #attach(socket: net.Socket | tls.TLSSocket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString('utf8');
      let at: number;
      while ((at = this.#buffer.indexOf('\r\n')) !== -1) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 2);
        this.#lines.push(line);
        this.transcript.push(`S: ${line}`);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #nextLine(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#closed) throw new Error(`connection closed while waiting for a reply\n--- transcript ---\n${this.transcript.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms\n--- transcript ---\n${this.transcript.join('\n')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** CRLF line ends and dot-stuffing (RFC 5321 4.5.2), for a message given with \n or \r\n. */
export function dotStuff(message: string): string {
  const crlf = message.replace(/\r?\n/g, '\r\n');
  const terminated = crlf.endsWith('\r\n') ? crlf : `${crlf}\r\n`;
  return terminated.replace(/^\./gm, '..');
}

/** A small valid message. */
export function sampleMessage(fields: { from?: string; to?: string; subject?: string; body?: string; messageId?: string } = {}): string {
  return [
    `From: ${fields.from ?? 'sender@example.org'}`,
    `To: ${fields.to ?? 'postmaster@localhost'}`,
    `Subject: ${fields.subject ?? 'test'}`,
    `Message-ID: ${fields.messageId ?? `<${Date.now()}.${Math.random().toString(36).slice(2)}@example.org>`}`,
    'Date: Sat, 28 Nov 2026 18:00:00 +0000',
    '',
    fields.body ?? 'Hello from the Petrel test suite.',
    '',
  ].join('\r\n');
}
