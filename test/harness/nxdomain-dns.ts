import { createSocket, type Socket } from 'node:dgram';

/**
 * A DNS server on a loopback UDP port that answers every query at once with
 * NXDOMAIN: "public DNS" for a daemon under test (rspamd asks blocklists and
 * the sender's domains for every message), so it neither depends on the
 * network nor waits out timeouts where there is none.
 */
export class NxdomainDns {
  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {}

  static async start(): Promise<NxdomainDns> {
    const socket = createSocket('udp4');
    socket.on('message', (query, peer) => {
      const answer = nxdomain(query);
      if (answer) socket.send(answer, peer.port, peer.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new NxdomainDns(socket, socket.address().port);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

/** The query's header and question, flagged as a recursive answer with RCODE 3 (RFC 1035 4.1). */
function nxdomain(query: Buffer): Buffer | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  let at = 12;
  while (at < query.length && query[at] !== 0) at += query[at] + 1;
  const end = at + 5; // the root label, QTYPE, QCLASS
  if (end > query.length) return undefined;
  const answer = Buffer.from(query.subarray(0, end));
  const recursionDesired = query[2] & 0x01;
  answer[2] = 0x80 | (query[2] & 0x78) | recursionDesired; // QR, the query's opcode, RD
  answer[3] = 0x80 | 3; // RA, NXDOMAIN
  answer.writeUInt16BE(0, 6); // no answers,
  answer.writeUInt16BE(0, 8); // no authority,
  answer.writeUInt16BE(0, 10); // no additional records (EDNS dropped)
  return answer;
}
