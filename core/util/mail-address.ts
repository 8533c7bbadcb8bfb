import { domainToASCII } from 'node:url';

/**
 * The one spelling of a domain that comparisons use: lower case, IDNs as
 * A-labels (smtp-server hands internationalised domains over in Unicode,
 * operators may write either form). Text that is no valid domain comes back
 * lower-cased, so it matches nothing that is.
 */
export function asciiDomain(domain: string): string {
  return domainToASCII(domain) || domain.toLowerCase();
}

/**
 * An address as comparisons see it: local part in lower case with its
 * sub-address removed (`alice+lists` → `alice` when the separator is `+`),
 * domain as asciiDomain gives it. Undefined when there is no `local@domain`.
 */
export function splitAddress(address: string, subaddressSeparator = ''): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  let local = address.slice(0, at).toLowerCase();
  const cut = subaddressSeparator === '' ? -1 : local.indexOf(subaddressSeparator);
  if (cut > 0) local = local.slice(0, cut);
  return { local, domain: asciiDomain(address.slice(at + 1)) };
}
