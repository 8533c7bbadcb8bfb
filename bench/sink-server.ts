/**
 * The remote host relayed mail goes to in the relay scenario: accepts and
 * discards every message (no greeting pause), and reports how many it has
 * received on stdout (`count N`, at most every 20 ms) so the benchmark knows
 * when the last one arrived. Prints `listening <port>` first.
 */
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type Internals = { _setListeners(cb: () => void): void; connectionReady(): void };
(SMTPConnection.prototype as unknown as { init(): void }).init = function init(this: Internals) {
  this._setListeners(() => this.connectionReady());
};

let received = 0;
let reported = 0;
const server = new SMTPServer({
  authOptional: true,
  disableReverseLookup: true,
  hideSTARTTLS: true,
  logger: false,
  maxClients: 10_000,
  onData(stream, _session, callback) {
    stream.on('end', () => {
      received++;
      callback(null, 'Ok: received');
    });
    stream.resume();
  },
});
setInterval(() => {
  if (received !== reported) {
    reported = received;
    process.stdout.write(`count ${received}\n`);
  }
}, 20).unref();
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
