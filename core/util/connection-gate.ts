import type { Server, Socket } from 'node:net';

type ConnectionHandler = (socket: Socket) => void;

/**
 * Connections held at most, per server (limits.clients' default). A flood
 * while Petrel starts (plugins may take up to their startTimeout) must not
 * take the descriptors the start itself needs (queue files, Redis); beyond
 * this a connection is closed at once, as a full server would turn it away.
 */
export const MAX_HELD = 1000;

/**
 * Holds the connections a listening server accepts until `open()`.
 *
 * Petrel binds its ports first (as root, when it must switch users) and
 * serves them only once it runs as its own user and its plugins have started.
 * Node has no "bound but not accepting" state, so the server listens at once
 * and the gate stands in for its connection handler meanwhile: a socket that
 * arrives is accepted by the kernel but not read (`pauseOnConnect`), so no
 * byte a client sends is looked at, no TLS handshake runs, until `open()`
 * hands it to the real handler (smtp-server's, or http's). The client sees
 * a slow greeting, not a refusal; past MAX_HELD waiting, a closed connection.
 */
export class ConnectionGate {
  readonly #server: Server & { pauseOnConnect: boolean };
  readonly #handlers: ConnectionHandler[];
  readonly #held = new Set<Socket>();
  readonly #hold = (socket: Socket) => {
    if (this.#held.size >= this.#maxHeld) {
      socket.destroy();
      return;
    }
    this.#held.add(socket);
    socket.once('close', () => this.#held.delete(socket));
    // Errors on a held socket (a reset) must not become an uncaught 'error'.
    socket.on('error', () => undefined);
  };
  readonly #resume: boolean;
  readonly #maxHeld: number;
  #open = false;

  /**
   * Call before `server.listen()`; the server's own connection handlers wait
   * behind the gate. `resume`: hand sockets over reading (what Node's http
   * server expects); smtp-server starts reading a socket itself, once it has
   * set up its parser or TLS, and must get it paused. `maxHeld`: see MAX_HELD.
   */
  constructor(server: Server, options: { resume: boolean; maxHeld?: number }) {
    this.#resume = options.resume;
    this.#maxHeld = options.maxHeld ?? MAX_HELD;
    this.#server = server as Server & { pauseOnConnect: boolean };
    this.#handlers = server.listeners('connection') as ConnectionHandler[];
    server.removeAllListeners('connection');
    this.#server.pauseOnConnect = true;
    server.on('connection', this.#hold);
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Connections held so far (for tests and logs). */
  get held(): number {
    return this.#held.size;
  }

  /** From now on the server's handlers get every connection, the held ones first. */
  open(): void {
    if (this.#open) return;
    this.#open = true;
    this.#server.off('connection', this.#hold);
    this.#server.pauseOnConnect = false;
    for (const handler of this.#handlers) this.#server.on('connection', handler);
    const held = [...this.#held];
    this.#held.clear();
    for (const socket of held) {
      if (socket.destroyed) continue;
      socket.removeAllListeners('error');
      for (const handler of this.#handlers) handler.call(this.#server, socket);
      // Node's http handler expects a socket that reads; smtp-server starts reading when it is ready.
      if (this.#resume) socket.resume();
    }
  }

  /** Closes the connections still waiting (start failed, or stopping before `open()`). */
  dropHeld(): void {
    for (const socket of this.#held) socket.destroy();
    this.#held.clear();
  }
}
