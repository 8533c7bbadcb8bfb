import { NetworkList } from '../util/networks.js';
import type { TraceSide } from './trace-event.js';
import type { TraceSubject } from './trace-subject.js';

/**
 * Which sessions a watcher wants, as `petrel trace server|client` and the
 * console ask for them. Every condition given must hold; several `sources`
 * are alternatives.
 */
export interface TraceFilter {
  readonly side: TraceSide;
  /** Inbound: client networks (CIDR). */
  readonly sources?: NetworkList;
  readonly listener?: string;
  /** Inbound: some MAIL FROM of the session is this address. */
  readonly sender?: string;
  /** Inbound: some RCPT TO of the session is this address. */
  readonly rcpt?: string;
  /** Outbound: the destination domain. */
  readonly domain?: string;
  /** Outbound: the server's name or address. */
  readonly mx?: string;
  /** Outbound: the message's queue id. */
  readonly qid?: string;
  /** Inbound: end the trace when the first matching session closes. */
  readonly onlyOne: boolean;
}

/** A query string (`source=127.0.0.2/32&sender=a@b`) as a filter; throws with a message naming the bad parameter. */
export function filterFromQuery(side: TraceSide, query: URLSearchParams): TraceFilter {
  const lower = (name: string) => query.get(name)?.trim().toLowerCase() || undefined;
  const sources = query.getAll('source').flatMap((value) => value.split(',')).map((value) => value.trim()).filter((value) => value !== '');
  let networks: NetworkList | undefined;
  try {
    networks = sources.length > 0 ? new NetworkList(sources) : undefined;
  } catch (error) {
    throw new Error(`source: ${(error as Error).message}`);
  }
  const onlyOne = query.get('onlyOne');
  return {
    side,
    sources: networks,
    listener: query.get('listener') || undefined,
    sender: lower('sender'),
    rcpt: lower('rcpt'),
    domain: lower('domain')?.replace(/\.$/, ''),
    mx: lower('mx')?.replace(/\.$/, ''),
    qid: query.get('queueId') || undefined,
    onlyOne: onlyOne === '' || onlyOne === '1' || onlyOne === 'true',
  };
}

/** Whether the fixed facts of a connection (address, listener, destination, server) fit. */
export function fitsConnection(filter: TraceFilter, subject: TraceSubject): boolean {
  if (filter.side !== subject.side) return false;
  if (filter.sources && !filter.sources.contains(subject.remote)) return false;
  if (filter.listener !== undefined && subject.listener !== filter.listener) return false;
  if (filter.domain !== undefined && subject.domain?.toLowerCase() !== filter.domain) return false;
  if (filter.mx !== undefined && subject.host?.toLowerCase() !== filter.mx && subject.remote !== filter.mx) return false;
  if (filter.qid !== undefined && subject.qid !== filter.qid) return false;
  return true;
}

/** Whether the envelope seen so far fits; undefined while it may still come (a later MAIL or RCPT). */
export function fitsEnvelope(filter: TraceFilter, subject: TraceSubject): boolean | undefined {
  if (filter.sender === undefined && filter.rcpt === undefined) return true;
  const sender = filter.sender === undefined || subject.senders.includes(filter.sender);
  const rcpt = filter.rcpt === undefined || subject.recipients.includes(filter.rcpt);
  return sender && rcpt ? true : undefined;
}

/** The query string for a filter (the CLI builds one from its flags). */
export function describeFilter(filter: TraceFilter): string {
  const parts = [
    ...(filter.sources?.entries ?? []).map((cidr) => `source ${cidr}`),
    filter.listener && `listener ${filter.listener}`,
    filter.sender && `sender ${filter.sender}`,
    filter.rcpt && `rcpt ${filter.rcpt}`,
    filter.domain && `domain ${filter.domain}`,
    filter.mx && `mx ${filter.mx}`,
    filter.qid && `queue id ${filter.qid}`,
    filter.onlyOne && 'one session',
  ].filter((part): part is string => typeof part === 'string' && part !== '');
  return parts.length > 0 ? parts.join(', ') : 'everything';
}
