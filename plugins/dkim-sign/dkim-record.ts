import { createPublicKey, type KeyObject } from 'node:crypto';

/** The DKIM algorithms Petrel signs with (RFC 6376, RFC 8463). */
export type DkimKeyType = 'rsa' | 'ed25519';

/** The key type of a private or public key, or undefined for one DKIM cannot use. */
export function dkimKeyType(key: KeyObject): DkimKeyType | undefined {
  return key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'ed25519' ? key.asymmetricKeyType : undefined;
}

/**
 * The `p=` value of a key record: for RSA the SubjectPublicKeyInfo (RFC 6376
 * 3.6.1), for Ed25519 the bare 32-byte public key (RFC 8463 section 4).
 */
export function publicKeyData(privateOrPublic: KeyObject): string {
  const key = privateOrPublic.type === 'private' ? createPublicKey(privateOrPublic) : privateOrPublic;
  if (dkimKeyType(key) === 'ed25519') {
    const jwk = key.export({ format: 'jwk' });
    return Buffer.from(jwk.x as string, 'base64url').toString('base64');
  }
  return (key.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
}

/** The TXT value to publish: `v=DKIM1; k=ed25519; p=…`. */
export function dkimRecordValue(key: KeyObject): string {
  return `v=DKIM1; k=${dkimKeyType(key) ?? 'rsa'}; p=${publicKeyData(key)}`;
}

/** Where the record goes: `<selector>._domainkey.<domain>`. */
export function dkimRecordName(domain: string, selector: string): string {
  return `${selector}._domainkey.${domain}`;
}

/**
 * The record as a zone file line. A TXT string holds at most 255 bytes, so
 * a longer value (any RSA key of 2048 bits) is written as several quoted
 * strings, which resolvers join back together.
 */
export function zoneFileLine(domain: string, selector: string, value: string): string {
  const strings: string[] = [];
  for (let at = 0; at < value.length; at += 255) strings.push(`"${value.slice(at, at + 255)}"`);
  return `${dkimRecordName(domain, selector)}. IN TXT ${strings.join(' ')}`;
}
