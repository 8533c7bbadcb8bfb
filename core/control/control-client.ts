import { createConnection } from 'node:net';
import { PetrelError } from '../errors.js';
import type { ControlRequest, ControlResponse } from './control-protocol.js';

/**
 * Sends one request to a running server's control socket. Resolves
 * `undefined` when no server listens there (no socket file, or a stale one),
 * so the caller can work on the queue directly instead.
 */
export function sendControlRequest(path: string, request: ControlRequest, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let answer = '';
    let connected = false;
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new PetrelError('PETREL_CONTROL_FAILED', `the running server did not answer on ${path} within ${timeoutMs / 1000} s`)),
    );
    socket.once('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (!connected && (error.code === 'ENOENT' || error.code === 'ECONNREFUSED')) resolve(undefined);
      else reject(error instanceof PetrelError ? error : new PetrelError('PETREL_CONTROL_FAILED', `control socket ${path}: ${error.message}`));
    });
    socket.once('end', () => {
      try {
        const response = JSON.parse(answer) as ControlResponse;
        if (response.ok) resolve(response.result ?? null);
        else reject(new PetrelError('PETREL_CONTROL_FAILED', `the server refused: ${response.error}`));
      } catch {
        reject(new PetrelError('PETREL_CONTROL_FAILED', 'the server closed the control connection without an answer'));
      }
    });
  });
}
