import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SystemSpec } from './systems.js';
import type { RunningSystem } from './server-process.js';
import { ifRunning, memory, treeCpuSeconds, treeOf } from '../process-stats.js';
import { freePort } from '../free-port.js';

const POSTFIX = '/usr/sbin/postfix';

export function postfixAvailable(): boolean {
  return existsSync(POSTFIX) && existsSync('/etc/postfix/master.cf') && process.getuid?.() === 0;
}

/**
 * A private Postfix instance (its own config and queue directories under the
 * benchmark's temp dir), accepting on loopback into its fsynced queue and
 * relaying everything to the sink: the peer the reference figures name.
 * Needs the Debian postfix package and root; the system daemon stays stopped.
 */
export const postfixPeer: SystemSpec = {
  name: 'postfix',
  description: 'Postfix (Debian), accepting into its queue and relaying to the sink',
  relays: true,
  start: async (workDir, sinkPort) => {
    const base = join(workDir, 'postfix');
    // mkdtemp makes the work dir 0700; Postfix's unprivileged processes must reach their queue below it.
    chmodSync(workDir, 0o755);
    const config = join(base, 'etc');
    mkdirSync(config, { recursive: true });
    mkdirSync(join(base, 'spool'), { recursive: true });
    mkdirSync(join(base, 'data'), { recursive: true });
    // Postfix refuses a data directory it does not own.
    execFileSync('chown', ['postfix', join(base, 'data')]);
    const port = await freePort();
    writeFileSync(
      join(config, 'main.cf'),
      [
        'compatibility_level = 3.6',
        `queue_directory = ${join(base, 'spool')}`,
        `data_directory = ${join(base, 'data')}`,
        'mail_owner = postfix',
        'setgid_group = postdrop',
        'inet_interfaces = 127.0.0.1',
        'inet_protocols = ipv4',
        'myhostname = postfix.bench.test',
        'mydestination =',
        'mynetworks = 127.0.0.0/8',
        `relayhost = [127.0.0.1]:${sinkPort}`,
        'smtpd_recipient_restrictions = permit_mynetworks, reject',
        'smtp_tls_security_level = none',
        'smtpd_tls_security_level = none',
        'alias_maps =',
        'alias_database =',
        'local_recipient_maps =',
        `maillog_file = ${join(base, 'maillog')}`,
        `maillog_file_prefixes = ${base}`,
        'default_process_limit = 200',
        'smtpd_client_connection_count_limit = 0',
        'smtpd_client_connection_rate_limit = 0',
        'default_destination_concurrency_limit = 20',
        '',
      ].join('\n'),
    );
    const master = readFileSync('/etc/postfix/master.cf', 'utf8').replace(/^smtp\s+inet\s.*$/m, `127.0.0.1:${port} inet n - n - - smtpd`);
    writeFileSync(join(config, 'master.cf'), master);
    execFileSync(POSTFIX, ['-c', config, 'check'], { stdio: 'ignore' });
    execFileSync(POSTFIX, ['-c', config, 'start'], { stdio: 'ignore' });
    const masterPid = Number(readFileSync(join(base, 'spool', 'pid', 'master.pid'), 'utf8').trim());
    return new PostfixInstance(config, port, masterPid);
  },
};

/**
 * A Postfix instance as the benchmark sees it. Postfix forks a process per
 * connection and per delivery, so its CPU is the master's own plus what its
 * reaped children used (cutime/cstime) plus its live children's, and its
 * memory is the resident memory of the whole process tree at the time.
 */
class PostfixInstance implements RunningSystem {
  readonly name = 'postfix';

  constructor(
    private readonly config: string,
    readonly port: number,
    private readonly master: number,
  ) {}

  cpu(): number {
    return treeCpuSeconds(this.master);
  }

  memory(): { rss: number; peakRss: number } {
    const rss = treeOf(this.master).reduce((sum, pid) => sum + ifRunning(() => memory(pid).rss, 0), 0);
    return { rss, peakRss: rss };
  }

  resetPeak(): void {
    // A tree of short-lived processes has no single peak counter; memory() is a snapshot.
  }

  async stop(): Promise<void> {
    try {
      execFileSync(POSTFIX, ['-c', this.config, 'stop'], { stdio: 'ignore' });
    } catch {
      // already stopped
    }
  }
}
