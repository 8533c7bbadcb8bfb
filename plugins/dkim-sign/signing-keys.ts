import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { asciiDomain, PetrelError } from 'petrel';
import { dkimKeyType, type DkimKeyType } from './dkim-record.js';

/** One configured key: which domain and selector it signs for, where the private key is. */
export interface KeyEntry {
  readonly domain: string;
  readonly selector: string;
  readonly keyFile: string;
}

export interface SigningKey {
  readonly domain: string;
  readonly selector: string;
  readonly type: DkimKeyType;
  readonly key: KeyObject;
  /** PEM, as mailauth takes it. */
  readonly pem: string;
}

/**
 * The private keys of dkim-sign, by signing domain (A-label, lower case).
 * Several keys for one domain sign together (an RSA and an Ed25519
 * signature side by side, RFC 8463 section 3). Read once at boot: a missing
 * or unusable key file stops the server with a message that says which and
 * how to make one, rather than sending unsigned mail quietly.
 */
export class SigningKeys {
  readonly #byDomain = new Map<string, SigningKey[]>();

  constructor(entries: readonly KeyEntry[], resolvePath: (path: string) => string) {
    for (const entry of entries) {
      const domain = asciiDomain(entry.domain);
      const loaded = loadKey(entry, resolvePath(entry.keyFile), domain);
      this.#byDomain.set(domain, [...(this.#byDomain.get(domain) ?? []), loaded]);
    }
  }

  get all(): readonly SigningKey[] {
    return [...this.#byDomain.values()].flat();
  }

  /** The keys for `domain`, or with `parents` those of the closest parent domain that has some. */
  for(domain: string, parents: boolean): readonly SigningKey[] {
    let candidate = asciiDomain(domain);
    for (;;) {
      const keys = this.#byDomain.get(candidate);
      if (keys) return keys;
      const dot = candidate.indexOf('.');
      if (!parents || dot < 0) return [];
      candidate = candidate.slice(dot + 1);
    }
  }
}

function loadKey(entry: KeyEntry, path: string, domain: string): SigningKey {
  const what = `DKIM key for ${entry.domain} (selector ${entry.selector})`;
  const howToMake = `create one with: npx petrel dkim keygen --domain ${entry.domain} --selector ${entry.selector}`;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new PetrelError('PETREL_PLUGIN_START', `dkim-sign: cannot read the ${what} at ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; ${howToMake}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new PetrelError('PETREL_PLUGIN_START', `dkim-sign: ${path} is not a PEM private key (${what}): ${(error as Error).message}`);
  }
  const type = dkimKeyType(key);
  if (!type) throw new PetrelError('PETREL_PLUGIN_START', `dkim-sign: ${path} is a ${key.asymmetricKeyType} key; DKIM signs with RSA or Ed25519 (${what})`);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (type === 'rsa' && bits !== undefined && bits < 1024) {
    throw new PetrelError('PETREL_PLUGIN_START', `dkim-sign: the ${what} has ${bits} bits; receivers ignore RSA keys under 1024 bits (RFC 8301), use 2048`);
  }
  return { domain, selector: entry.selector, type, key, pem };
}
