import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { sparePort } from './ports.js';
import { tempDir } from './temp-dir.js';

/** What the DNSSEC tests run, from the Debian packages unbound, nsd and ldnsutils (.ci/run installs them). */
const PACKAGES = 'unbound nsd ldnsutils';

export interface ZoneSpec {
  /** The zone's apex, e.g. `secure.test`. */
  readonly name: string;
  /** Master-file lines, names relative to the apex (`mx IN A 127.0.0.1`); SOA and NS are added. */
  readonly records: readonly string[];
  /** Sign the zone (ldns-signzone) and give unbound its key as the trust anchor. */
  readonly signed: boolean;
  /** RRsets (relative owner name, type) whose signature is broken after signing, so a validator finds them bogus. */
  readonly bogus?: readonly { readonly name: string; readonly type: string }[];
}

/**
 * Real DNSSEC on loopback, for the tests that must see what a validating
 * resolver does: zones signed at run time with fresh keys (ldns-keygen,
 * ldns-signzone), served by nsd, and an unbound that validates them against
 * those keys as trust anchors (no root zone involved: each zone is a stub
 * zone of unbound's, signed ones anchored, unsigned ones `domain-insecure`).
 * Both listen on 127.0.0.1, on spare ports, with everything in a temp dir.
 *
 *   const world = await DnssecWorld.start([{ name: 'secure.test', signed: true, records: ['mx IN A 127.0.0.1'] }]);
 *   // Petrel's config: dns: { servers: [world.resolver] }
 *   await world.stop();
 *
 * Fails with the packages to install when a program is missing.
 */
export class DnssecWorld {
  private constructor(
    /** unbound, the validating resolver: `127.0.0.1:<port>`. */
    readonly resolver: string,
    /** nsd, the authoritative server (answers without validating): `127.0.0.1:<port>`. */
    readonly authoritative: string,
    private readonly processes: readonly ChildProcess[],
    private readonly remove: () => void,
  ) {}

  static async start(zones: readonly ZoneSpec[]): Promise<DnssecWorld> {
    const programs = { keygen: binary('ldns-keygen'), signzone: binary('ldns-signzone'), nsd: binary('nsd'), unbound: binary('unbound') };
    const dir = tempDir('petrel-dnssec-');
    const processes: ChildProcess[] = [];
    try {
      const anchors = zones.map((zone) => writeZone(dir.path, zone, programs));
      const nsdPort = await sparePort({ udp: true });
      writeFileSync(join(dir.path, 'nsd.conf'), nsdConfig(dir.path, nsdPort, zones));
      processes.push(await daemon(programs.nsd, ['-d', '-c', join(dir.path, 'nsd.conf')], nsdPort, `ns.${zones[0].name}`, join(dir.path, 'nsd.log')));
      const unboundPort = await sparePort({ udp: true });
      writeFileSync(join(dir.path, 'unbound.conf'), unboundConfig(dir.path, unboundPort, nsdPort, zones, anchors));
      processes.push(await daemon(programs.unbound, ['-d', '-c', join(dir.path, 'unbound.conf')], unboundPort, `ns.${zones[0].name}`));
      return new DnssecWorld(`127.0.0.1:${unboundPort}`, `127.0.0.1:${nsdPort}`, processes, dir.remove);
    } catch (error) {
      await Promise.all(processes.map(stopProcess));
      dir.remove();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map(stopProcess));
    this.remove();
  }
}

/** Writes the zone file (signed when asked); returns the trust anchor file for a signed zone. */
function writeZone(dir: string, zone: ZoneSpec, programs: { keygen: string; signzone: string }): string | undefined {
  const file = join(dir, `${zone.name}.zone`);
  const header = [
    `$ORIGIN ${zone.name}.`,
    '$TTL 300',
    `@ IN SOA ns.${zone.name}. hostmaster.${zone.name}. 1 3600 600 86400 300`,
    `@ IN NS ns.${zone.name}.`,
    'ns IN A 127.0.0.1',
  ];
  writeFileSync(file, `${[...header, ...zone.records].join('\n')}\n`);
  if (!zone.signed) return undefined;
  const run = (program: string, args: string[]) => execFileSync(program, args, { cwd: dir, encoding: 'utf8' }).trim();
  const ksk = run(programs.keygen, ['-a', 'ECDSAP256SHA256', '-k', zone.name]);
  const zsk = run(programs.keygen, ['-a', 'ECDSAP256SHA256', zone.name]);
  run(programs.signzone, ['-f', `${file}.signed`, file, ksk, zsk]);
  if (zone.bogus?.length) writeFileSync(`${file}.signed`, breakSignatures(readFileSync(`${file}.signed`, 'utf8'), zone));
  return join(dir, `${ksk}.ds`);
}

/** Alters one character of the signature over each bogus RRset: the records stay, their RRSIG no longer verifies. */
function breakSignatures(signed: string, zone: ZoneSpec): string {
  const targets = new Set(zone.bogus!.map(({ name, type }) => `${name === '@' ? '' : `${name}.`}${zone.name}. ${type}`.toLowerCase()));
  let broken = 0;
  const lines = signed.split('\n').map((line) => {
    const rrsig = /^(\S+)\s+\d+\s+IN\s+RRSIG\s+(\S+)\s/.exec(line);
    if (!rrsig || !targets.has(`${rrsig[1]} ${rrsig[2]}`.toLowerCase())) return line;
    broken++;
    const at = line.length - 10;
    return line.slice(0, at) + (line[at] === 'A' ? 'B' : 'A') + line.slice(at + 1);
  });
  if (broken !== targets.size) throw new Error(`found ${broken} of the ${targets.size} signatures to break in ${zone.name}`);
  return lines.join('\n');
}

function nsdConfig(dir: string, port: number, zones: readonly ZoneSpec[]): string {
  return [
    'server:',
    '  ip-address: 127.0.0.1',
    `  port: ${port}`,
    '  do-ip6: no',
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${dir}"`,
    '  database: ""',
    `  zonelistfile: "${join(dir, 'zone.list')}"`,
    `  xfrdfile: "${join(dir, 'xfrd.state')}"`,
    `  xfrdir: "${dir}"`,
    `  pidfile: "${join(dir, 'nsd.pid')}"`,
    `  logfile: "${join(dir, 'nsd.log')}"`,
    '  server-count: 1',
    'remote-control:',
    '  control-enable: no',
    ...zones.flatMap((zone) => ['zone:', `  name: ${zone.name}`, `  zonefile: ${zone.name}.zone${zone.signed ? '.signed' : ''}`]),
  ].join('\n');
}

function unboundConfig(dir: string, port: number, nsdPort: number, zones: readonly ZoneSpec[], anchors: readonly (string | undefined)[]): string {
  return [
    'server:',
    '  interface: 127.0.0.1',
    `  port: ${port}`,
    '  do-ip6: no',
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    '  val-log-level: 2',
    '  access-control: 127.0.0.0/8 allow',
    // nsd is on loopback too; unbound refuses to ask loopback servers unless told.
    '  do-not-query-localhost: no',
    '  module-config: "validator iterator"',
    // RFC 6761 names are answered locally by default; these are served by nsd.
    '  local-zone: "test." nodefault',
    '  qname-minimisation: no',
    ...anchors.flatMap((anchor) => (anchor ? [`  trust-anchor-file: "${anchor}"`] : [])),
    ...zones.filter((zone) => !zone.signed).map((zone) => `  domain-insecure: "${zone.name}"`),
    'remote-control:',
    '  control-enable: no',
    ...zones.flatMap((zone) => ['stub-zone:', `  name: "${zone.name}"`, `  stub-addr: 127.0.0.1@${nsdPort}`]),
  ].join('\n');
}

/** Starts a server in the foreground; resolves once it answers `probe` (an A record), or fails with its output. */
async function daemon(program: string, args: string[], port: number, probe: string, logFile?: string): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.once('error', (error) => (output += `\n${error.message}`));
  const resolver = new dns.Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  for (const deadline = Date.now() + 15_000; ; ) {
    if (await resolver.resolve4(probe).then(() => true, () => false)) return child;
    if (Date.now() > deadline || child.exitCode !== null) {
      await stopProcess(child);
      const log = logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      throw new Error(`${program} did not answer on 127.0.0.1:${port}:\n${(output + log).slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The path of a program (sbin included, where Debian puts the servers); fails loudly when it is not installed. */
function binary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  const found = dirs.filter(Boolean).map((dir) => join(dir, name)).find((path) => existsSync(path));
  if (!found) throw new Error(`${name} is not installed: the DNSSEC tests need the Debian packages ${PACKAGES} (bash .ci/run installs them)`);
  return found;
}
