/**
 * A bare smtp-server that accepts every message and discards it, with its
 * fixed 100 ms pre-greeting pause removed (as in the reference figures, or
 * the baseline would measure that pause instead of the server). Two roles:
 *
 * - the baseline, the ceiling for any MTA built on smtp-server;
 * - with `--count`, the sink of the relay scenario: it also reports how many
 *   messages it has received (`count N` on stdout, at most every 20 ms) so
 *   the benchmark knows when the last one arrived.
 *
 * Run as its own process by the benchmark; prints `listening <port>` first.
 */
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type Internals = { _setListeners(cb: () => void): void; connectionReady(): void };
(SMTPConnection.prototype as unknown as { init(): void }).init = function init(this: Internals) {
  this._setListeners(() => this.connectionReady());
};

const counting = process.argv.includes('--count');
let received = 0;
let reported = 0;

const server = new SMTPServer({
  authOptional: true,
  disableReverseLookup: true,
  hideSTARTTLS: true,
  logger: false,
  size: 64 * 1024 * 1024,
  maxClients: 10_000,
  onData(stream, _session, callback) {
    stream.on('end', () => {
      received++;
      callback(null, 'Ok: discarded');
    });
    stream.resume();
  },
});
if (counting) {
  setInterval(() => {
    if (received !== reported) {
      reported = received;
      process.stdout.write(`count ${received}\n`);
    }
  }, 20).unref();
}
server.listen(0, '127.0.0.1', () => {
  const address = server.server.address() as { port: number };
  process.stdout.write(`listening ${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
