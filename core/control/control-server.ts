import { rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { PetrelError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { CONTROL_OPS, controlSocketPath, type ControlRequest, type ControlResponse } from './control-protocol.js';

const MAX_REQUEST_BYTES = 64 * 1024;

/** Carries out one control request in the running server. */
export type ControlHandler = (request: ControlRequest) => Promise<unknown>;

/**
 * Serves `petrel queue ...` and `petrel reload` requests for a running server on
 * `<dataDir>/control.sock`, so operators change the queue through the
 * process that owns it (queue-spool's files belong to one process). A stale
 * socket file from a crash is replaced; a live one means another server
 * runs on this data directory, and start fails.
 */
export class ControlServer {
  readonly path: string;
  #server: Server | undefined;

  constructor(
    dataDir: string,
    private readonly handle: ControlHandler,
    private readonly log: Logger,
  ) {
    this.path = controlSocketPath(dataDir);
  }

  async listen(): Promise<void> {
    if (await isListening(this.path)) {
      throw new PetrelError('PETREL_CONTROL_IN_USE', `another Petrel is running on this data directory (${this.path} answers); stop it first`);
    }
    await rm(this.path, { force: true });
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // bind() creates the socket file inside listen(), with the mode the umask leaves: with this
      // umask it is 0600 from the first moment, where a chmod afterwards would leave a window in
      // which any local user could connect and operate the queue.
      const umask = process.umask(0o177);
      try {
        server.listen(this.path, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    this.#server = server;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.path, { force: true });
  }

  #serve(socket: Socket): void {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) return socket.destroy();
      const end = buffered.indexOf('\n');
      if (end < 0) return;
      socket.removeAllListeners('data');
      this.#answer(buffered.slice(0, end)).then((response) => socket.end(`${JSON.stringify(response)}\n`));
    });
  }

  async #answer(line: string): Promise<ControlResponse> {
    let request: ControlRequest;
    try {
      request = JSON.parse(line) as ControlRequest;
      if (!CONTROL_OPS.includes(request.op)) throw new Error(`unknown operation ${JSON.stringify(request.op)}`);
    } catch (error) {
      return { ok: false, error: `bad control request: ${(error as Error).message}` };
    }
    try {
      const result = await this.handle(request);
      if (request.op === 'reload') {
        this.log.info({ op: request.op }, 'reload requested by operator');
      } else if (request.op !== 'list' && request.op !== 'stats' && request.op !== 'show' && request.op !== 'why') {
        this.log.info({ op: request.op, qid: request.id, result }, `queue ${request.op} by operator`);
      }
      return { ok: true, result: result ?? null };
    } catch (error) {
      this.log.error({ op: request.op, err: error }, `control request failed: ${(error as Error).message}`);
      return { ok: false, error: (error as Error).message };
    }
  }
}

function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
