import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSelfSigned } from '../../core/smtp/tls-material.js';
import { tempDir } from './temp-dir.js';

export interface TestCertificate {
  readonly key: Buffer;
  readonly cert: Buffer;
  /** The same, written to files (for configs that name cert/key paths). */
  readonly keyFile: string;
  readonly certFile: string;
}

const made = new Map<string, TestCertificate>();

/**
 * A real self-signed certificate for `name` (plus localhost and 127.0.0.1),
 * made once per test process with openssl, or with Petrel's own generator
 * where openssl is missing.
 */
export function testCertificate(name = 'localhost'): TestCertificate {
  const existing = made.get(name);
  if (existing) return existing;
  const dir = tempDir('petrel-cert-').path;
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1`,
      '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'ignore' });
  } catch {
    const generated = generateSelfSigned(name);
    writeFileSync(keyFile, generated.key);
    writeFileSync(certFile, generated.cert);
  }
  const certificate = { key: readFileSync(keyFile), cert: readFileSync(certFile), keyFile, certFile };
  made.set(name, certificate);
  return certificate;
}
