import { DeliveryFailure, type SmtpSession } from 'petrel/delivery';
import { ExchangeFailure, type ConnectRequest, type ExchangeConnector } from './exchange-connector.js';
import type { Exchange } from './exchanges.js';

/**
 * Tries the exchangers of a domain in order until one gives a session ready
 * for MAIL FROM. Whatever stops one exchanger — no address, refused
 * connection, a 4xx (or 5xx) greeting, a failed TLS handshake where TLS was
 * required, an MX the MTA-STS policy does not list — moves on to the next.
 * When none is left, the failures decide together (see verdict()).
 */
export async function openFirstExchange(request: ConnectRequest, exchanges: readonly Exchange[], connector: ExchangeConnector): Promise<SmtpSession> {
  const failures: ExchangeFailure[] = [];
  for (const exchange of exchanges) {
    if (request.signal.aborted) break;
    try {
      return await connector.connect(request, exchange);
    } catch (error) {
      if (!(error instanceof ExchangeFailure)) throw error;
      failures.push(error);
      request.log.info({ mx: exchange.name, kind: error.kind, reply: error.reply.text }, `cannot use ${exchange.name}: ${error.reply.text}`);
      request.note(`cannot use MX ${exchange.name} (${error.kind}): ${error.reply.text}`);
    }
  }
  throw verdict(request.domain, failures);
}

/**
 * What the failures of every exchanger mean for the mail:
 *
 * - every MX refused by the domain's MTA-STS policy: deferred (RFC 8461
 *   section 5: never delivered to an MX outside the policy, and a policy can
 *   be fixed), 451 4.7.5;
 * - every failure permanent (no address, a forbidden address, no
 *   REQUIRETLS for a REQUIRETLS message): bounced with the first one's reply;
 * - otherwise deferred with the last temporary failure, the one the sender
 *   is most likely to need (a greeting text, a refused connection).
 */
export function verdict(domain: string, failures: readonly ExchangeFailure[]): DeliveryFailure {
  if (failures.length === 0) return new DeliveryFailure({ code: 451, enhanced: '4.4.0', text: `delivery to ${domain} interrupted` });
  if (failures.every((failure) => failure.kind === 'policy')) {
    return new DeliveryFailure({
      code: 451,
      enhanced: '4.7.5',
      text: `no MX of ${domain} is allowed by its MTA-STS policy (mode enforce): ${failures.map((f) => f.exchange).join(', ')}`,
    });
  }
  if (failures.every((failure) => failure.permanent)) return new DeliveryFailure(failures[0].reply);
  const temporary = failures.filter((failure) => !failure.permanent);
  const telling = temporary.filter((failure) => failure.kind !== 'policy');
  return new DeliveryFailure((telling.at(-1) ?? temporary.at(-1)!).reply);
}
