import net from 'node:net';

/**
 * A TCP relay between a client and a server (Redis, here) that can lose one
 * reply: once armed with a marker, the first connection that sends the
 * server a chunk containing it is cut as soon as the server answers, before
 * the answer reaches the client. The server has then carried the command
 * out, but the client never hears so; it sees a dropped connection (and
 * ioredis sends the command again once it has reconnected). Everything else
 * is passed on as it is. Listens on 127.0.0.1, port 0.
 */
export class LostReplyRelay {
  #marker: Buffer | undefined;
  /** How many replies were lost so far. */
  lost = 0;
  readonly #sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(targetPort: number): Promise<LostReplyRelay> {
    const server = net.createServer();
    const relay = new LostReplyRelay(server);
    server.on('connection', (client) => relay.#relay(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** The next command containing `marker` is carried out by the server, but its reply is lost. */
  loseReplyTo(marker: string): void {
    this.#marker = Buffer.from(marker);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #relay(client: net.Socket, targetPort: number): void {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    let cutAtReply = false;
    client.on('data', (chunk: Buffer) => {
      if (this.#marker && chunk.includes(this.#marker)) {
        this.#marker = undefined;
        cutAtReply = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cutAtReply) {
        client.write(chunk);
        return;
      }
      this.lost++;
      client.destroy();
      upstream.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
