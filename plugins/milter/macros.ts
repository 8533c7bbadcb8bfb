import { isIP } from 'node:net';
import type { Address, Session, Transaction } from 'petrel';
import { cstrings, type MacroStageName } from './protocol.js';

/**
 * Sendmail macros a milter reads with smfi_getsymval, sent (SMFIC_MACRO)
 * just before the step they belong to. Names are kept without braces here:
 * one-letter macros go out bare (`j`), longer ones in braces (`{client_addr}`),
 * as Sendmail and Postfix send them.
 */
export type MacroValues = ReadonlyMap<string, string>;

/** What Petrel sends at each stage when the milter did not ask for a list of its own (Postfix's defaults, plus the client's). */
export const DEFAULT_MACROS: Readonly<Record<MacroStageName, readonly string[]>> = {
  connect: ['j', 'daemon_name', 'daemon_addr', 'daemon_port', 'if_name', 'if_addr', 'v', '_', 'client_addr', 'client_name', 'client_port', 'client_ptr'],
  helo: ['tls_version', 'cipher'],
  mail: ['i', 'auth_type', 'auth_authen', 'mail_addr'],
  rcpt: ['rcpt_addr'],
  data: ['i'],
  endOfHeaders: ['i'],
  endOfMessage: ['i'],
};

export interface ServerFacts {
  readonly hostname: string;
  readonly version: string;
}

/** The values known so far in a session: connection, TLS, login, queue id, sender, the recipient at hand. */
export function macroValues(server: ServerFacts, session: Session, authMethod: string | undefined, transaction?: Transaction, recipient?: Address): MacroValues {
  const values = new Map<string, string>();
  const set = (name: string, value: string | undefined) => {
    if (value !== undefined) values.set(name, value);
  };
  const remote = session.remote;
  set('j', server.hostname);
  set('daemon_name', session.listener.name);
  set('daemon_addr', session.local.address);
  set('daemon_port', String(session.local.port));
  set('if_name', server.hostname);
  set('if_addr', session.local.address);
  set('v', `Petrel ${server.version}`);
  set('_', `${remote.hostname ?? 'unknown'} [${remote.address}]`);
  set('client_addr', remote.address);
  set('client_name', remote.hostname ?? `[${remote.address}]`);
  set('client_port', String(remote.port));
  set('client_ptr', remote.hostname ?? 'unknown');
  if (session.tls.secure) {
    set('tls_version', session.tls.protocol);
    set('cipher', session.tls.cipher);
  }
  if (session.user !== undefined) {
    set('auth_authen', session.user);
    set('auth_type', authMethod);
  }
  if (transaction) {
    set('i', transaction.id);
    set('mail_addr', transaction.from.address);
  }
  set('rcpt_addr', recipient?.address);
  return values;
}

/** The SMFIC_MACRO data for one step: its command letter, then name/value pairs for the names wanted that have a value. */
export function macroPacketData(command: string, wanted: readonly string[], values: MacroValues): Buffer | undefined {
  const pairs: string[] = [];
  for (const wantedName of wanted) {
    const name = wantedName.replace(/^\{(.*)\}$/, '$1');
    const value = values.get(name);
    if (value !== undefined) pairs.push(name.length === 1 ? name : `{${name}}`, value);
  }
  return pairs.length === 0 ? undefined : Buffer.concat([Buffer.from(command, 'latin1'), cstrings(...pairs)]);
}

/** SMFIC_CONNECT data: host name (or `[address]`), family, port, address. */
export function connectData(remote: { readonly address: string; readonly port: number; readonly hostname?: string }): Buffer {
  const { address, port, hostname } = remote;
  const family = isIP(address);
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port & 0xffff, 0);
  const name = Buffer.concat([Buffer.from(hostname ?? `[${address}]`, 'utf8'), Buffer.from([0])]);
  if (family === 0) return Buffer.concat([name, Buffer.from('U', 'latin1')]);
  return Buffer.concat([name, Buffer.from(family === 6 ? '6' : '4', 'latin1'), portBytes, cstrings(address)]);
}

/** SMFIC_MAIL / SMFIC_RCPT data: `<address>`, then each ESMTP parameter. */
export function envelopeData(address: Address): Buffer {
  const params = Object.entries(address.args).map(([key, value]) => (value === true ? key : `${key}=${value}`));
  return cstrings(`<${address.address}>`, ...params);
}
