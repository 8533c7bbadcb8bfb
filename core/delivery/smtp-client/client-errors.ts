import { parseReply, type DeliveryReply } from '../outbound.js';

/** What nodemailer's SMTPConnection puts on the errors it reports. */
export interface SmtpClientError extends Error {
  /** ECONNECTION, ETIMEDOUT, ESOCKET, ETLS, EAUTH, EPROTOCOL, EENVELOPE, EMESSAGE, ESTREAM, EREQUIRETLS… */
  code?: string;
  /** The server's reply that caused it, when there was one. */
  response?: string;
  responseCode?: number;
  /** The SMTP command that failed (CONN, EHLO, STARTTLS, MAIL FROM, RCPT TO, DATA…). */
  command?: string;
  /** Set on a per-recipient refusal (RCPT, or an LMTP reply after DATA). */
  recipient?: string;
  /** Per-recipient refusals, on an error and on a partly successful send. */
  rejectedErrors?: SmtpClientError[];
}

const SERVER_REPLY = /^[245]\d\d/;

/** The server's own reply carried by an error, if it has one. */
export function serverReplyOf(error: SmtpClientError, remoteMta: string): DeliveryReply | undefined {
  return error.response && SERVER_REPLY.test(error.response) ? parseReply(error.response, remoteMta) : undefined;
}

/**
 * Why a connection could not be set up (connect, greeting, EHLO, STARTTLS,
 * AUTH), as a reply for the log and the DSN. Always temporary: a server
 * that refuses to talk to us (even with 554) or a failed login is a
 * problem of this moment or of our configuration, never a verdict on the
 * message, so the mail waits and the next MX (or the next attempt) is tried.
 */
export function connectFailure(error: SmtpClientError, remoteMta: string): DeliveryReply {
  const server = serverReplyOf(error, remoteMta);
  const detail = error.message.replace(/: [245]\d\d[\s\S]*$/, '').trim();
  if (error.code === 'EAUTH' || error.code === 'ENOAUTH') {
    return { code: 451, enhanced: '4.7.8', text: `authentication to ${remoteMta} failed: ${server ? `${server.code} ${server.text}` : detail}`, remoteMta };
  }
  if (error.code === 'ETLS') {
    return { code: 451, enhanced: '4.7.5', text: `TLS with ${remoteMta} failed: ${server ? `${server.code} ${server.text}` : detail}`, remoteMta };
  }
  if (server) {
    if (server.code >= 400 && server.code < 500) return server;
    return { code: 451, enhanced: '4.4.0', text: `${remoteMta} refused to talk to us: ${server.code}${server.enhanced ? ` ${server.enhanced}` : ''} ${server.text}`, remoteMta };
  }
  if (error.code === 'ETIMEDOUT') return { code: 451, enhanced: '4.4.1', text: `no answer from ${remoteMta}: ${detail}`, remoteMta };
  return { code: 451, enhanced: '4.4.1', text: `connect to ${remoteMta} failed: ${detail}`, remoteMta };
}

/**
 * Why a transaction failed as a whole (MAIL FROM refused, DATA refused, the
 * connection dropped). A server's reply is kept as it is, so its class
 * decides bounce or retry; failures without one are temporary, except the
 * two the server made permanent by what it advertised (SIZE, REQUIRETLS).
 */
export function transactionFailure(error: SmtpClientError, remoteMta: string): DeliveryReply {
  const server = serverReplyOf(error, remoteMta);
  if (server) return server;
  if (error.code === 'EREQUIRETLS') {
    // RFC 8689 section 4.2.1: a REQUIRETLS message is never sent to a server that does not offer it.
    return { code: 550, enhanced: '5.7.30', text: `REQUIRETLS support required: ${remoteMta} does not offer REQUIRETLS`, remoteMta };
  }
  if (error.code === 'EMESSAGE' && /size/i.test(error.message)) {
    return { code: 552, enhanced: '5.3.4', text: `message too big for ${remoteMta}: ${error.message}`, remoteMta };
  }
  if (error.code === 'ESTREAM') return { code: 451, enhanced: '4.3.0', text: `local error reading the message: ${error.message}` };
  return { code: 451, enhanced: '4.4.2', text: `connection to ${remoteMta} lost: ${error.message}`, remoteMta };
}
