import { rootCertificates, type ConnectionOptions } from 'node:tls';
import type { MxConnection } from 'mx-connect';
import type { SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection';

/**
 * What TLS one connection to one MX needs, strongest reason first:
 *
 * - `dane`: the exchanger publishes DNSSEC-validated TLSA records (DANE on,
 *   mx-dns.ts): TLS required, certificate matched against them (not a CA).
 * - `verify`: the domain's MTA-STS policy is `enforce` (and this MX is in
 *   it), or the message asked for REQUIRETLS: TLS required, certificate
 *   valid for the MX name under a trusted CA.
 * - `encrypt`: the operator set `tls.mode: required`: TLS required, the
 *   certificate is not checked (like Postfix's `encrypt` level).
 * - `opportunistic`: STARTTLS when offered, certificate not checked; if the
 *   handshake fails, the message may go in plaintext (`tls.plaintextFallback`).
 *   MTA-STS `testing` lands here: its failures are reported, not enforced.
 */
export type TlsRequirement =
  | { readonly level: 'dane' }
  | { readonly level: 'verify'; readonly reason: 'mta-sts' | 'requiretls' }
  | { readonly level: 'encrypt' }
  | { readonly level: 'opportunistic' };

export interface TlsSettings {
  readonly mode: 'opportunistic' | 'required';
  readonly minVersion: ConnectionOptions['minVersion'];
  /** Extra trusted CA certificates (PEM), besides Node's bundled ones. */
  readonly ca: readonly string[];
}

export function tlsRequirement(
  connection: MxConnection,
  asked: { readonly mtaStsEnforced: boolean; readonly requireTls: boolean },
  settings: TlsSettings,
): TlsRequirement {
  if (connection.daneEnabled && connection.requireTls) return { level: 'dane' };
  if (asked.mtaStsEnforced) return { level: 'verify', reason: 'mta-sts' };
  if (asked.requireTls) return { level: 'verify', reason: 'requiretls' };
  if (settings.mode === 'required') return { level: 'encrypt' };
  return { level: 'opportunistic' };
}

/** True when a failed TLS handshake may be answered by sending in plaintext. */
export function allowsPlaintext(requirement: TlsRequirement): boolean {
  return requirement.level === 'opportunistic';
}

/**
 * The SMTPConnection options that implement a requirement for a connection
 * to `hostname` (the MX name: SNI and the name the certificate must carry).
 * DANE's certificate check runs after the handshake (exchange-connector.ts),
 * where the whole chain is at hand for DANE-TA records.
 */
export function connectionTlsOptions(requirement: TlsRequirement | 'plaintext', hostname: string, settings: TlsSettings): SMTPConnectionOptions {
  if (requirement === 'plaintext') return { ignoreTLS: true };
  const servername = hostnameOrUndefined(hostname);
  const base: ConnectionOptions = { minVersion: settings.minVersion, ...(servername ? { servername } : {}) };
  switch (requirement.level) {
    case 'verify':
      return {
        requireTLS: true,
        tls: { ...base, rejectUnauthorized: true, ...(settings.ca.length > 0 ? { ca: [...rootCertificates, ...settings.ca] } : {}) },
      };
    case 'dane':
      return { requireTLS: true, tls: { ...base, rejectUnauthorized: false, checkServerIdentity: () => undefined } };
    case 'encrypt':
      return { requireTLS: true, tls: { ...base, rejectUnauthorized: false } };
    case 'opportunistic':
      return { opportunisticTLS: true, tls: { ...base, rejectUnauthorized: false } };
  }
}

/** SNI carries names only, never an address literal. */
function hostnameOrUndefined(name: string): string | undefined {
  return /^[\d.]+$/.test(name) || name.includes(':') ? undefined : name;
}
