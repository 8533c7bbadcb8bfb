import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../free-port.js';
import { HARAKA_VERSION } from './haraka-install.js';
import { ServerProcess } from './server-process.js';
import type { SystemSpec } from './systems.js';

const NODE = join(process.cwd(), 'node_modules', '.bin', 'node');

/**
 * Haraka forwarding: loopback may relay (the relay plugin's ACL), and every
 * message goes through queue/smtp_forward to the sink. smtp_forward opens its
 * connection to the sink at queue time and answers the client's DATA with the
 * sink's reply, so a 250 from Haraka means the sink has the message: there is
 * no local queue. The reference figure is "Haraka forwarding ≈ 290 msgs/s".
 */
export function harakaForward(haraka: string): SystemSpec {
  return {
    name: 'haraka',
    description: `Haraka ${HARAKA_VERSION} (npm), one process, relay ACL + queue/smtp_forward to the sink (no queue)`,
    relays: true,
    start: (workDir, sinkPort) =>
      startHaraka(haraka, 'haraka', workDir, {
        plugins: ['relay', 'queue/smtp_forward'],
        // enable_outbound: a relaying connection's mail goes to the queue_outbound hook,
        // which smtp_forward only takes when told to.
        'smtp_forward.ini': ['host=127.0.0.1', `port=${sinkPort}`, 'enable_outbound=true'],
      }),
  };
}

/**
 * Haraka accepting and discarding, as in the reference figure "Haraka 3.3 (one
 * process, accept and discard, no queue) ≈ 0.33× bare". queue/discard only
 * discards when YES_REALLY_DO_DISCARD is set (its guard against losing mail).
 */
export function harakaDiscard(haraka: string): SystemSpec {
  return {
    name: 'haraka-discard',
    description: `Haraka ${HARAKA_VERSION} (npm), one process, relay ACL + queue/discard`,
    start: (workDir) =>
      startHaraka(haraka, 'haraka-discard', workDir, { plugins: ['relay', 'queue/discard'] }, { YES_REALLY_DO_DISCARD: '1' }),
  };
}

/** Files of a Haraka config dir beyond the common ones, by name, as lines: at least its plugin list. */
type HarakaConfig = { plugins: string[] } & Record<string, string[]>;

/**
 * A Haraka instance of its own under the run's work dir, made by `haraka -i`
 * (Haraka's sample connection.ini and the rest of its defaults: Haraka reads
 * nothing from its package's config dir at run time), then changed: one
 * process (nodes=0: no cluster master forking workers, so the process
 * measured is the one serving SMTP) on a free loopback port.
 *
 * Only the plugins named are loaded: none of Haraka's sample list, so no
 * mail_from.is_resolvable, SPF, DNS lists or early_talker (no pre-greeting
 * pause). The one lookup left is the core's reverse DNS of the client, which
 * for 127.0.0.1 the resolver answers from /etc/hosts.
 */
async function startHaraka(haraka: string, name: string, workDir: string, own: HarakaConfig, env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const port = await freePort();
  const files: Record<string, string[]> = {
    'smtp.ini': [`listen=127.0.0.1:${port}`, 'nodes=0'],
    me: ['haraka.bench.test'],
    // Warnings and errors only: at info or notice Haraka logs every connection and message.
    'log.ini': ['[main]', 'level=warn', 'format=default'],
    // Loopback may relay, so every recipient is accepted, as Postfix's permit_mynetworks does.
    'relay.ini': ['[relay]', 'acl=true'],
    relay_acl_allow: ['127.0.0.0/8'],
    ...own,
  };
  const home = join(workDir, name);
  execFileSync(NODE, [haraka, '-i', home], { stdio: 'ignore' });
  for (const [file, lines] of Object.entries(files)) writeFileSync(join(home, 'config', file), `${lines.join('\n')}\n`);
  return new ServerProcess(name, NODE, [haraka, '-c', home], port, env).ready();
}
