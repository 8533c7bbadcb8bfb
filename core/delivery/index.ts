/**
 * `petrel/delivery`: the toolkit the built-in SMTP and LMTP delivery targets
 * (relay-mx, relay-smarthost, deliver-lmtp) are made of, for plugins that
 * deliver to a next hop of their own. One nodemailer connection per
 * SmtpSession with one result per recipient, a pool of connections per
 * destination, and the mapping of client errors to per-recipient results.
 * The delivery contract itself (Delivery, Route, results, parseReply) is
 * part of `petrel`, beside the hooks that use it.
 */
export { SmtpSession } from './smtp-client/smtp-session.js';
export { ConnectionPool } from './smtp-client/connection-pool.js';
export type { PoolLimits, PooledConnection } from './smtp-client/connection-pool.js';
export { sendPooled } from './smtp-client/pooled-send.js';
export { poolOptions } from './smtp-client/pool-options.js';
export { DeliveryFailure } from './smtp-client/delivery-failure.js';
export { connectFailure, transactionFailure } from './smtp-client/client-errors.js';
export type { SmtpClientError } from './smtp-client/client-errors.js';
