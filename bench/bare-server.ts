/**
 * The baseline: a bare smtp-server that accepts every message and discards
 * it. It is the ceiling for any MTA built on smtp-server. Its fixed 100 ms
 * pre-greeting pause is removed (as in the reference figures), or the
 * baseline would measure that pause instead of the server.
 *
 * Run as its own process by the benchmark; prints `listening <port>`.
 */
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type Internals = { _setListeners(cb: () => void): void; connectionReady(): void };
(SMTPConnection.prototype as unknown as { init(): void }).init = function init(this: Internals) {
  this._setListeners(() => this.connectionReady());
};

const server = new SMTPServer({
  authOptional: true,
  disableReverseLookup: true,
  hideSTARTTLS: true,
  logger: false,
  size: 64 * 1024 * 1024,
  onData(stream, _session, callback) {
    stream.on('end', () => callback(null, 'Ok: discarded'));
    stream.resume();
  },
});
server.listen(0, '127.0.0.1', () => {
  const address = server.server.address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
