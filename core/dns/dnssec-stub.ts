import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type MxData, type Packet, type TlsaData } from 'dns-packet';
import { dnsError } from './dns-error.js';
import type { ServerAddress } from './server-address.js';

/** The record types whose DNSSEC status Petrel asks about (DANE: TLSA and the MX and address records it depends on). */
export type DnssecRecordType = 'A' | 'AAAA' | 'MX' | 'TLSA';

export interface DnssecAnswer {
  /** The records, shaped as node:dns shapes them (MX `{ exchange, priority }`, TLSA `{ certUsage, selector, match, data }`). */
  readonly records: unknown[];
  /**
   * The validating resolver vouched for the answer (the AD bit, RFC 4035
   * 3.2.3): signed, and verified up to a trust anchor. False for an unsigned
   * zone, and for every answer of a resolver that does not validate.
   */
  readonly secure: boolean;
}

/** EDNS0 payload size of the DNS Flag Day 2020: large enough for most answers, small enough not to fragment. */
const UDP_PAYLOAD_SIZE = 1232;

const RCODE_NOERROR = 0;
const RCODE_NXDOMAIN = 3;
const RCODE_CODES: Record<number, string> = { 1: 'EFORMERR', 2: 'ESERVFAIL', 4: 'ENOTIMP', 5: 'EREFUSED' };

/**
 * A stub resolver that reports the AD bit, for the few lookups where it
 * matters. node:dns (c-ares) answers records but never says whether they
 * were validated, and RFC 7672 lets DANE use TLSA records only when they
 * were. So these questions go straight to the configured resolver (which
 * must validate, and should be on this machine: the AD bit is only as
 * trustworthy as the path to it), with the DO and AD bits set (RFC 6840
 * 5.7), over UDP and again over TCP when the answer was truncated.
 * Packets are built and read by dns-packet; this class only carries them.
 *
 * Failures carry node:dns's codes: ENOTFOUND (NXDOMAIN) and ENODATA are
 * answers; ESERVFAIL (also what a validating resolver answers for bogus
 * data), EREFUSED and ETIMEOUT make it ask the next server, `tries` rounds.
 */
export class DnssecStub {
  constructor(
    private readonly servers: readonly ServerAddress[],
    private readonly timeoutMs: number,
    private readonly tries = 2,
  ) {}

  async resolve(name: string, type: DnssecRecordType): Promise<DnssecAnswer> {
    const question = name.replace(/\.$/, '');
    if (!isDomainName(question)) throw dnsError('ENOTFOUND', type, name);
    let failure: unknown = dnsError('ESERVFAIL', type, name);
    for (let round = 0; round < this.tries; round++) {
      for (const server of this.servers) {
        try {
          return answerOf(await this.#ask(server, question, type), name, type);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOTFOUND' || code === 'ENODATA') throw error;
          failure = error;
        }
      }
    }
    throw failure;
  }

  async #ask(server: ServerAddress, name: string, type: DnssecRecordType): Promise<DecodedPacket> {
    const overUdp = await exchangeUdp(server, query(name, type), this.timeoutMs, name, type);
    if (!overUdp.flag_tc) return overUdp;
    return exchangeTcp(server, query(name, type), this.timeoutMs, name, type);
  }
}

function query(name: string, type: DnssecRecordType): Packet {
  const opt = { type: 'OPT', name: '.', udpPayloadSize: UDP_PAYLOAD_SIZE, flags: dnsPacket.DNSSEC_OK } as unknown as Answer;
  return {
    type: 'query',
    id: randomInt(0, 65536),
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ type, name, class: 'IN' }],
    additionals: [opt],
  };
}

/** True when a response answers this query: same id, same question (names compare without case). */
function answersQuery(response: DecodedPacket, sent: Packet): boolean {
  const asked = sent.questions![0];
  const echoed = response.questions?.[0];
  return (
    response.type === 'response' &&
    response.id === sent.id &&
    echoed !== undefined &&
    echoed.type === asked.type &&
    echoed.name.toLowerCase() === asked.name.toLowerCase()
  );
}

/**
 * One UDP exchange, on a socket connected to the server (the kernel drops
 * datagrams from anyone else). Datagrams that do not answer the query
 * (another id or question) are ignored, as spoofing defence.
 */
function exchangeUdp(server: ServerAddress, sent: Packet, timeoutMs: number, name: string, type: string): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const finish = settleOnce(resolve, reject, timeoutMs, () => dnsError('ETIMEOUT', type, name), () => socket.close());
    socket.on('error', (error) => finish(error));
    socket.on('message', (message) => {
      const response = decodeOrUndefined(message);
      if (response && answersQuery(response, sent)) finish(undefined, response);
    });
    socket.connect(server.port, server.host, () => {
      socket.send(dnsPacket.encode(sent), (error) => {
        if (error) finish(error);
      });
    });
  });
}

/** One TCP exchange (RFC 7766): a two-byte length, then the message, both ways. */
function exchangeTcp(server: ServerAddress, sent: Packet, timeoutMs: number, name: string, type: string): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let received = Buffer.alloc(0);
    const finish = settleOnce(resolve, reject, timeoutMs, () => dnsError('ETIMEOUT', type, name), () => socket.destroy());
    socket.on('error', (error) => finish(error));
    socket.on('connect', () => socket.write(dnsPacket.streamEncode(sent)));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      const response = decodeOrUndefined(received.subarray(2, 2 + received.readUInt16BE(0)));
      if (response && answersQuery(response, sent)) finish(undefined, response);
      else finish(dnsError('EBADRESP', type, name));
    });
    socket.on('end', () => finish(dnsError('ECONNRESET', type, name)));
  });
}

/**
 * The one way an exchange ends: the first of an answer, an error or the
 * timeout settles the promise and releases the socket; later calls do nothing.
 */
function settleOnce(
  resolve: (response: DecodedPacket) => void,
  reject: (error: Error) => void,
  timeoutMs: number,
  timeoutError: () => Error,
  release: () => void,
): (error: Error | undefined, response?: DecodedPacket) => void {
  let settled = false;
  const finish = (error: Error | undefined, response?: DecodedPacket) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    release();
    if (error) reject(error);
    else resolve(response!);
  };
  const timer = setTimeout(() => finish(timeoutError()), timeoutMs);
  return finish;
}

function decodeOrUndefined(message: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(message);
  } catch {
    return undefined;
  }
}

function answerOf(response: DecodedPacket, name: string, type: DnssecRecordType): DnssecAnswer {
  const rcode = (response.flags ?? 0) & 0xf;
  if (rcode === RCODE_NXDOMAIN) throw dnsError('ENOTFOUND', type, name);
  if (rcode !== RCODE_NOERROR) throw dnsError(RCODE_CODES[rcode] ?? 'EBADRESP', type, name);
  // The answer section may start with the CNAME chain the resolver followed; only the asked type counts.
  const records = (response.answers ?? []).filter((answer) => answer.type === type).map((answer) => nodeShape(answer));
  if (records.length === 0) throw dnsError('ENODATA', type, name);
  return { records, secure: response.flag_ad };
}

/** The shape node:dns gives the same record, so callers need not care which resolver answered. */
function nodeShape(answer: Answer): unknown {
  switch (answer.type) {
    case 'MX': {
      const mx = answer.data as MxData;
      return { exchange: mx.exchange, priority: mx.preference ?? 0 };
    }
    case 'TLSA': {
      const tlsa = answer.data as TlsaData;
      const bytes = tlsa.certificate;
      return {
        certUsage: tlsa.usage,
        selector: tlsa.selector,
        match: tlsa.matchingType,
        data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
      };
    }
    default:
      return (answer as Exclude<Answer, { type: 'OPT' }>).data;
  }
}

/** RFC 1035 2.3.4: labels of 1 to 63 octets, 253 characters in all. Anything else cannot be asked. */
function isDomainName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => label.length > 0 && label.length <= 63);
}
