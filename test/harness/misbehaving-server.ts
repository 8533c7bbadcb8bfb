import net from 'node:net';

/** What the server does once a client has sent its first bytes. */
export type Misbehaviour =
  /** Reads everything and never answers (a hung scanner). */
  | { readonly kind: 'silent' }
  /** Writes `bytes`, then closes the connection (a partial answer, or garbage). */
  | { readonly kind: 'answer-and-close'; readonly bytes: string | Buffer };

/**
 * A loopback TCP server that plays a broken daemon (a scanner that hangs,
 * closes in the middle of its answer, or answers garbage), on a port of its
 * own: what a real daemon does only when it is broken, on demand.
 */
export class MisbehavingServer {
  /** What the next connection gets; change it between tests. */
  behaviour: Misbehaviour;

  private constructor(
    behaviour: Misbehaviour,
    private readonly server: net.Server,
    private readonly sockets: Set<net.Socket>,
    readonly port: number,
  ) {
    this.behaviour = behaviour;
  }

  static async start(behaviour: Misbehaviour): Promise<MisbehavingServer> {
    const sockets = new Set<net.Socket>();
    let started: MisbehavingServer | undefined;
    const server = net.createServer((socket) => {
      const { behaviour } = started!;
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.once('data', () => {
        if (behaviour.kind === 'answer-and-close') socket.end(behaviour.bytes);
      });
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    started = new MisbehavingServer(behaviour, server, sockets, (server.address() as net.AddressInfo).port);
    return started;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
