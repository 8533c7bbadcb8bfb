import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { NxdomainDns } from './nxdomain-dns.js';
import { sparePort } from './ports.js';
import { tempDir } from './temp-dir.js';

/**
 * A real rspamd of the test's own: one normal worker on a spare loopback
 * port, its configuration, database and run directories in a temp dir, no
 * controller, no Redis (the modules that need it stay off). `localD` files
 * go into its local.d/ (actions.conf, regexp.conf, ...). Debian's modules
 * and rules are used as installed; only the URL suffix list is cut to a few
 * names, since compiling the full one takes rspamd tens of seconds. Its DNS
 * is a stub of its own that answers NXDOMAIN at once (nxdomain-dns.ts): no
 * blocklist or domain lookup leaves the machine or waits for a timeout.
 * A missing rspamd fails the test, loudly.
 */
export class RspamdDaemon {
  #process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: { path: string; remove: () => void },
    private readonly dns: NxdomainDns,
  ) {}

  /** `workers`: normal worker processes (1 for tests; rspamd's own default is one per CPU). */
  static async start(localD: Record<string, string> = {}, workers = 1): Promise<RspamdDaemon> {
    const dir = tempDir('petrel-rspamd-');
    const port = await sparePort();
    const dns = await NxdomainDns.start();
    for (const sub of ['local.d', 'db', 'run']) mkdirSync(join(dir.path, sub));
    writeFileSync(join(dir.path, 'tld.dat'), 'com\norg\nnet\nexample\ntest\n');
    writeFileSync(join(dir.path, 'rspamd.conf'), mainConfig(port, workers));
    writeFileSync(join(dir.path, 'local.d', 'options.inc'), `url_tld = "${join(dir.path, 'tld.dat')}";\ndisable_hyperscan = true;\ndns { nameserver = ["127.0.0.1:${dns.port}"]; }\n`);
    for (const [name, text] of Object.entries(localD)) writeFileSync(join(dir.path, 'local.d', name), text);
    const daemon = new RspamdDaemon(port, dir, dns);
    await daemon.#run();
    return daemon;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // SIGTERM: the main process stops its workers before it exits.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await this.dns.stop();
    this.dir.remove();
  }

  async #run(): Promise<void> {
    const vars = ['LOCAL_CONFDIR', this.dir.path, 'DBDIR', join(this.dir.path, 'db'), 'RUNDIR', join(this.dir.path, 'run'), 'LOGDIR', this.dir.path];
    const args = ['-f', '-i', '-c', join(this.dir.path, 'rspamd.conf')];
    for (let i = 0; i < vars.length; i += 2) args.push('--var', `${vars[i]}=${vars[i + 1]}`);
    // -i: the suite may run as root, which rspamd refuses for its workers unless told.
    const child = spawn('rspamd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('error', (error) => (output += `\n${error.message}`));
    this.#process = child;
    const deadline = Date.now() + 60_000;
    while (!(await answersPing(this.port))) {
      if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
        await this.stop().catch(() => undefined);
        throw new Error(`rspamd did not start on port ${this.port} (is the rspamd package installed?):\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function mainConfig(port: number, workers: number): string {
  return `.include "$CONFDIR/common.conf"
options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
  type = "console";
  level = "warning";
}
worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  count = ${workers};
  .include "$CONFDIR/worker-normal.inc"
}
`;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/ping', timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.once('error', () => resolve(false));
    request.once('timeout', () => request.destroy());
  });
}
