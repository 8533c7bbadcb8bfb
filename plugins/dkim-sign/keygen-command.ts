import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { asciiDomain, asOwnerOf, type CommandContext, type PluginCommand } from 'petrel';
import { dkimRecordValue, zoneFileLine, type DkimKeyType } from './dkim-record.js';

type Algorithm = DkimKeyType | 'both';

/** A key to make: which algorithm, under which selector, into which file. */
interface PlannedKey {
  readonly type: DkimKeyType;
  readonly selector: string;
  readonly file: string;
}

/**
 * `petrel dkim keygen`: makes a DKIM key pair for dkim-sign, writes the
 * private key (PEM, mode 0600) under `<dataDir>/dkim/<domain>/<selector>.key`
 * (or --out) and prints the DNS record to publish and the config lines that
 * use the key. RSA (2048 bits) is the default because every receiver
 * verifies it; Ed25519 (RFC 8463) is small and fast but not yet checked
 * everywhere, so `--algo both` makes one of each (selectors `<S>-rsa` and
 * `<S>-ed25519`) and dkim-sign signs with both.
 */
export const keygenCommand: PluginCommand = {
  name: 'dkim',
  usage: 'keygen --domain DOMAIN --selector SELECTOR [--algo rsa|ed25519|both] [--bits 2048] [--out FILE] [--force]',
  description: 'make a DKIM key for dkim-sign (RSA 2048 by default) and print the DNS record to publish',
  options: {
    domain: { type: 'string' },
    selector: { type: 'string' },
    algo: { type: 'string' },
    bits: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
  },
  run: keygen,
};

async function keygen(context: CommandContext): Promise<number> {
  const fail = (message: string): number => {
    context.err(message);
    return 1;
  };
  const wrong = (problem: string): number => context.usage(`dkim keygen: ${problem}`);
  const [action] = context.args;
  const { flags } = context;
  if (action === undefined) return context.usage('which dkim command?');
  if (action !== 'keygen') return context.usage(`unknown dkim command "${action}"`);
  if (typeof flags.domain !== 'string') return wrong('--domain is missing');
  if (typeof flags.selector !== 'string') return wrong('--selector is missing');
  const domain = asciiDomain(flags.domain.trim().replace(/\.$/, ''));
  const selector = flags.selector.trim();
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(domain)) return wrong(`"${flags.domain}" is not a domain name`);
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(selector)) return wrong(`"${selector}" is not a selector (letters, digits, dots, - and _)`);
  const algo = flags.algo ?? 'rsa';
  if (algo !== 'rsa' && algo !== 'ed25519' && algo !== 'both') return wrong(`--algo must be rsa, ed25519 or both, not "${String(algo)}"`);
  const bits = flags.bits === undefined ? 2048 : Number(flags.bits);
  if (algo !== 'ed25519' && (!Number.isInteger(bits) || bits < 1024 || bits > 8192)) return wrong('--bits must be from 1024 to 8192 (2048 recommended)');
  if (algo === 'both' && typeof flags.out === 'string') return wrong('--out names one file; with --algo both the keys go under the data directory');

  const planned = await plan(context, algo, domain, selector);
  for (const key of planned) {
    if (existsSync(key.file) && flags.force !== true) {
      return fail(`${key.file} exists already; keep it (its DNS record is published) or pass --force to replace it`);
    }
  }
  const made = [];
  for (const key of planned) {
    const privateKey = generate(key.type, bits);
    // Run by root, as the owner of where the key goes (the data directory's: the server user, who must read it at a reload).
    await asOwnerOf(dirname(key.file), async () => {
      await mkdir(dirname(key.file), { recursive: true, mode: 0o700 });
      await writeFile(key.file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    });
    context.out(`wrote ${key.file} (${key.type}${key.type === 'rsa' ? `, ${bits} bits` : ''})`);
    made.push({ ...key, record: zoneFileLine(domain, key.selector, dkimRecordValue(privateKey)) });
  }

  context.out('');
  context.out(made.length === 1 ? 'Publish this DNS record:' : 'Publish these DNS records:');
  context.out('');
  for (const key of made) context.out(key.record);
  context.out('');
  context.out(`Then list the ${made.length === 1 ? 'key' : 'keys'} under the dkim-sign plugin in your config:`);
  context.out('');
  context.out('  - name: dkim-sign');
  context.out('    options:');
  context.out('      keys:');
  // dkim-sign reads keyFile relative to the config file.
  const configDir = dirname(resolve(context.configFile));
  for (const key of made) {
    const fromConfig = relative(configDir, key.file);
    const keyFile = fromConfig.startsWith('..') ? key.file : `./${fromConfig}`;
    context.out(`        - { domain: ${domain}, selector: ${key.selector}, keyFile: ${keyFile} }`);
  }
  return 0;
}

async function plan(context: CommandContext, algo: Algorithm, domain: string, selector: string): Promise<PlannedKey[]> {
  const { out } = context.flags;
  if (algo !== 'both') {
    const file = typeof out === 'string' ? resolve(out) : join((await context.paths()).dataDir, 'dkim', domain, `${selector}.key`);
    return [{ type: algo, selector, file }];
  }
  const directory = join((await context.paths()).dataDir, 'dkim', domain);
  return (['rsa', 'ed25519'] as const).map((type) => ({ type, selector: `${selector}-${type}`, file: join(directory, `${selector}-${type}.key`) }));
}

function generate(type: DkimKeyType, bits: number): KeyObject {
  return type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }).privateKey : generateKeyPairSync('ed25519').privateKey;
}
