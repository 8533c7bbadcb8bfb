import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname as machineName } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../config/load.js';
import { PACKAGE_ROOT, PETREL_VERSION } from '../../version.js';
import type { CliContext } from '../petrel.js';
import { siteConfigText } from '../site-config.js';

const USAGE = 'usage: petrel init DIR [--hostname mx.example.org] [--domain example.org] [--force]';
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * `petrel init DIR`: a site directory for an installed Petrel. It holds the
 * shipped profile as DIR/mta.config.yaml (every comment kept, the host name
 * and local domain from the options), DIR/data/ for everything Petrel
 * keeps, and DIR/package.json, so `npm install petrel-plugin-x` there makes
 * `- package: petrel-plugin-x` resolve. Paths in the config are relative to
 * it, so `petrel start -c DIR/mta.config.yaml` works from anywhere.
 */
export async function initCommand(context: CliContext): Promise<number> {
  const [dir] = context.args;
  if (dir === undefined) return context.usage('init: which directory?', USAGE);
  const site = resolve(dir);
  const hostname = (stringFlag(context, 'hostname') ?? machineName()).toLowerCase().replace(/\.$/, '');
  const domain = (stringFlag(context, 'domain') ?? domainOfHost(hostname)).toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(hostname)) return context.usage(`init: --hostname ${hostname} is not a host name`, USAGE);
  if (!DOMAIN.test(domain)) return context.usage(`init: --domain ${domain} is not a domain name`, USAGE);
  const configFile = join(site, 'mta.config.yaml');
  if (existsSync(configFile) && context.flags.force !== true) return fail(context, `${configFile} exists already (--force replaces it; data/ is left alone)`);

  const shipped = await readFile(new URL('mta.config.yaml', PACKAGE_ROOT), 'utf8');
  const text = siteConfigText(shipped, { hostname, domain, petrelDir: fileURLToPath(PACKAGE_ROOT).replace(/\/$/, '') });
  parseConfigText(text, configFile, {}); // the shipped profile with our edits must still be a valid config

  await mkdir(join(site, 'data'), { recursive: true, mode: 0o750 });
  await writeFile(configFile, text, { mode: 0o640 });
  const packageFile = join(site, 'package.json');
  const wrotePackage = !existsSync(packageFile);
  if (wrotePackage) await writeFile(packageFile, `${JSON.stringify(sitePackage(site), null, 2)}\n`);

  const c = dir === '.' ? '' : ` -c ${join(dir, 'mta.config.yaml')}`;
  context.out(`wrote ${configFile} (host ${hostname}, local domain ${domain}; listeners on loopback until you change them)`);
  context.out(`made  ${join(site, 'data')}/ (queue, mailboxes, keys, the generated certificate)`);
  if (wrotePackage) context.out(`wrote ${packageFile} (npm install plugins here; the config names them with package:)`);
  context.out('');
  context.out('Next:');
  context.out(`  petrel check-config${c}`);
  context.out(`  petrel user add you@${domain}${c}`);
  context.out(`  petrel start${c}`);
  return 0;
}

/**
 * The site's package.json: private, there to hold the plugins installed in
 * the site. It depends on the Petrel that made it by a link (`file:` to its
 * package directory), which satisfies the plugins' peer dependency on
 * petrel without npm fetching a copy: plugins import the very Petrel that
 * runs them.
 */
function sitePackage(site: string): Record<string, unknown> {
  const name = basename(site).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'site';
  const petrel = fileURLToPath(PACKAGE_ROOT).replace(/\/$/, '');
  const insideSite = !relative(site, petrel).startsWith('..');
  return {
    name: `petrel-site-${name}`,
    private: true,
    description: `Plugins of the Petrel site in ${site} (made by petrel init with Petrel ${PETREL_VERSION}); install them with npm install`,
    type: 'module',
    dependencies: insideSite ? {} : { petrel: `file:${petrel}` },
  };
}

/** mx.example.org → example.org; a name of one or two labels stays as it is. */
function domainOfHost(hostname: string): string {
  const labels = hostname.split('.');
  return labels.length > 2 ? labels.slice(1).join('.') : hostname;
}

function stringFlag(context: CliContext, name: string): string | undefined {
  const value = context.flags[name];
  return typeof value === 'string' ? value.trim() : undefined;
}

function fail(context: CliContext, message: string): number {
  context.err(`init: ${message}`);
  return 1;
}
