import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { createRequire } from 'node:module';
import type { TlsConfig } from '../config/schema.js';
import { PetrelError } from '../errors.js';
import type { Paths } from '../paths.js';
import { asOwnerOf } from '../privileges/as-owner.js';

/** What the SMTP listeners need to speak TLS. */
export interface TlsMaterial {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Picks the certificate for the name the client asked for (SNI), exact name first, then *.parent. */
  readonly SNICallback: (servername: string, callback: (error: Error | null, context?: SecureContext) => void) => void;
}

export async function loadTlsMaterial(config: TlsConfig, paths: Paths, hostname: string): Promise<TlsMaterial> {
  const main = config.cert !== undefined && config.key !== undefined
    ? await readPair(paths.resolve(config.cert), paths.resolve(config.key))
    : await asOwnerOf(paths.dataDir, () => selfSignedPair(selfSignedDirectory(paths), hostname));
  const contexts = new Map<string, SecureContext>();
  for (const entry of config.sni) {
    const pair = await readPair(paths.resolve(entry.cert), paths.resolve(entry.key));
    const context = makeContext(pair, config.minVersion, entry.cert);
    for (const name of entry.names) contexts.set(name.toLowerCase(), context);
  }
  makeContext(main, config.minVersion, config.cert ?? 'self-signed certificate');
  return {
    ...main,
    minVersion: config.minVersion,
    SNICallback: (servername, callback) => {
      const name = servername.toLowerCase();
      const wildcard = `*.${name.slice(name.indexOf('.') + 1)}`;
      // undefined falls back to the default certificate
      callback(null, contexts.get(name) ?? contexts.get(wildcard));
    },
  };
}

/** Where `tls.selfSigned` keeps the certificate it generated. */
export function selfSignedDirectory(paths: Paths): string {
  return join(paths.dataDir, 'tls');
}

function makeContext(pair: { key: Buffer; cert: Buffer }, minVersion: string, label: string): SecureContext {
  try {
    return createSecureContext({ ...pair, minVersion: minVersion as 'TLSv1.2' });
  } catch (error) {
    throw new PetrelError('PETREL_TLS', `TLS certificate ${label} is not usable: ${(error as Error).message}`, { cause: error });
  }
}

async function readPair(certFile: string, keyFile: string): Promise<{ key: Buffer; cert: Buffer }> {
  try {
    return { cert: await readFile(certFile), key: await readFile(keyFile) };
  } catch (error) {
    throw new PetrelError('PETREL_TLS', `cannot read TLS files ${certFile} / ${keyFile}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * A certificate for development, made once and kept under dataDir/tls so that
 * restarts present the same one. Clients cannot verify it; MX-to-MX TLS is
 * opportunistic and accepts it, which is what makes it useful for trying Petrel.
 * Started as root, Petrel reads and writes it as the data directory's owner
 * (asOwnerOf): the directory is that user's, and a link it holds must not
 * lead root's writeFile or readFile anywhere else.
 */
async function selfSignedPair(directory: string, hostname: string): Promise<{ key: Buffer; cert: Buffer }> {
  const certFile = join(directory, 'self-signed.crt');
  const keyFile = join(directory, 'self-signed.key');
  if (existsSync(certFile) && existsSync(keyFile)) return readPair(certFile, keyFile);
  const generated = generateSelfSigned(hostname);
  await mkdir(directory, { recursive: true });
  await writeFile(keyFile, generated.key, { mode: 0o600 });
  await writeFile(certFile, generated.cert);
  return generated;
}

/** A self-signed RSA certificate for `hostname`, localhost and 127.0.0.1 (node-forge; takes a second or two). */
export function generateSelfSigned(hostname: string): { key: Buffer; cert: Buffer } {
  // Loaded only here: node-forge is ~10 MiB of memory a server that has real certificates never needs.
  const selfsigned = createRequire(import.meta.url)('selfsigned') as typeof import('selfsigned');
  const pems = selfsigned.generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    days: 825,
    algorithm: 'sha256',
    extensions: [
      { name: 'subjectAltName', altNames: [{ type: 2, value: hostname }, { type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { key: Buffer.from(pems.private), cert: Buffer.from(pems.cert) };
}
