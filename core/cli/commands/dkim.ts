import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { loadConfigFile } from '../../config/load.js';
import { makePaths } from '../../paths.js';
import { asciiDomain } from '../../util/mail-address.js';
import { dkimRecordValue, zoneFileLine } from '../../../plugins/dkim-sign/dkim-record.js';
import type { CliContext } from '../petrel.js';

const USAGE = 'usage: petrel dkim keygen --domain DOMAIN --selector SELECTOR [--algo ed25519|rsa] [--bits 2048] [--out FILE] [--force]';

/**
 * `petrel dkim keygen`: makes a DKIM key pair for dkim-sign, writes the
 * private key (PEM, mode 0600) under `<dataDir>/dkim/<domain>/<selector>.key`
 * (or --out) and prints the DNS record to publish and the config lines that
 * use the key. RSA (2048 bits) is what every receiver verifies; Ed25519
 * (RFC 8463) is small and fast but not yet checked everywhere, so sign with
 * both when you can.
 */
export async function dkimCommand(context: CliContext): Promise<number> {
  const fail = (message: string): number => {
    context.err(`dkim: ${message}`);
    return 1;
  };
  const wrong = (problem: string): number => context.usage(`dkim keygen: ${problem}`, USAGE);
  const [action] = context.args;
  const { flags } = context;
  if (action === undefined) return context.usage('which dkim command?', USAGE);
  if (action !== 'keygen') return context.usage(`unknown dkim command "${action}"`, USAGE);
  if (typeof flags.domain !== 'string') return wrong('--domain is missing');
  if (typeof flags.selector !== 'string') return wrong('--selector is missing');
  const domain = asciiDomain(flags.domain.trim().replace(/\.$/, ''));
  const selector = flags.selector.trim();
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(domain)) return wrong(`"${flags.domain}" is not a domain name`);
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(selector)) return wrong(`"${selector}" is not a selector (letters, digits, dots, - and _)`);
  const algo = flags.algo ?? 'ed25519';
  if (algo !== 'ed25519' && algo !== 'rsa') return wrong(`--algo must be ed25519 or rsa, not "${String(algo)}"`);
  const bits = flags.bits === undefined ? 2048 : Number(flags.bits);
  if (algo === 'rsa' && (!Number.isInteger(bits) || bits < 1024 || bits > 8192)) return wrong('--bits must be from 1024 to 8192 (2048 recommended)');

  const file = typeof flags.out === 'string' ? resolve(flags.out) : join(await dataDir(context), 'dkim', domain, `${selector}.key`);
  if (existsSync(file) && flags.force !== true) {
    return fail(`${file} exists already; keep it (its DNS record is published) or pass --force to replace it`);
  }
  const key = generate(algo, bits);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });

  // dkim-sign reads keyFile relative to the config file.
  const fromConfig = relative(dirname(resolve(context.configFile)), file);
  const keyFile = fromConfig.startsWith('..') ? file : `./${fromConfig}`;
  context.out(`wrote ${file} (${algo}${algo === 'rsa' ? `, ${bits} bits` : ''})`);
  context.out('');
  context.out('Publish this DNS record:');
  context.out('');
  context.out(zoneFileLine(domain, selector, dkimRecordValue(key)));
  context.out('');
  context.out('Then list the key under the dkim-sign plugin in your config:');
  context.out('');
  context.out('  - name: dkim-sign');
  context.out('    options:');
  context.out('      keys:');
  context.out(`        - { domain: ${domain}, selector: ${selector}, keyFile: ${keyFile} }`);
  return 0;
}

function generate(algo: 'ed25519' | 'rsa', bits: number): KeyObject {
  return algo === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }).privateKey : generateKeyPairSync('ed25519').privateKey;
}

/** The config's data directory; ./data when there is no config file yet (a fresh checkout). */
async function dataDir(context: CliContext): Promise<string> {
  if (!existsSync(context.configFile)) return resolve('data');
  const loaded = await loadConfigFile(context.configFile);
  return makePaths(loaded.baseDir, loaded.config.server.dataDir).dataDir;
}
