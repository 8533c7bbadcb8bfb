import type { Socket } from 'node:net';

/**
 * The PROXY protocol header a load balancer (HAProxy, AWS NLB, nginx) puts in
 * front of a connection to say who the real client is. Version 1 is a text
 * line, version 2 a binary block; smtp-server reads only version 1, so Petrel
 * reads both itself. Only peers in the listener's `proxyProtocol` list are
 * asked for a header: anyone else could claim any address.
 *
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */

export interface ProxiedAddresses {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export type ProxyParse =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `addresses` is undefined for LOCAL (v2) and UNKNOWN (v1): the proxy's own connection, keep the socket's addresses. */
  | { readonly kind: 'header'; readonly consumed: number; readonly addresses?: ProxiedAddresses };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX_LENGTH = 107;
const V2_MAX_LENGTH = 16 + 65_535;

export function parseProxyHeader(data: Buffer): ProxyParse {
  if (data.length === 0) return { kind: 'incomplete' };
  const signatureLength = Math.min(data.length, V2_SIGNATURE.length);
  if (data.subarray(0, signatureLength).equals(V2_SIGNATURE.subarray(0, signatureLength))) {
    return data.length < 16 ? { kind: 'incomplete' } : parseV2(data);
  }
  const prefix = Math.min(data.length, 6);
  if (data.subarray(0, prefix).toString('latin1') !== 'PROXY '.slice(0, prefix)) {
    return { kind: 'invalid', reason: 'no PROXY header' };
  }
  return parseV1(data);
}

function parseV1(data: Buffer): ProxyParse {
  const end = data.indexOf('\r\n');
  if (end === -1) return data.length > V1_MAX_LENGTH ? { kind: 'invalid', reason: 'v1 header too long' } : { kind: 'incomplete' };
  if (end + 2 > V1_MAX_LENGTH) return { kind: 'invalid', reason: 'v1 header too long' };
  const parts = data.subarray(0, end).toString('latin1').split(' ');
  const consumed = end + 2;
  if (parts[1] === 'UNKNOWN') return { kind: 'header', consumed };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { kind: 'invalid', reason: 'malformed v1 header' };
  const [, , source, destination, sourcePort, destinationPort] = parts;
  const ports = [Number(sourcePort), Number(destinationPort)];
  if (ports.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) return { kind: 'invalid', reason: 'bad port in v1 header' };
  return { kind: 'header', consumed, addresses: { remoteAddress: source, remotePort: ports[0], localAddress: destination, localPort: ports[1] } };
}

function parseV2(data: Buffer): ProxyParse {
  const versionCommand = data[12];
  if (versionCommand >> 4 !== 2) return { kind: 'invalid', reason: 'unsupported PROXY version' };
  const length = data.readUInt16BE(14);
  if (16 + length > V2_MAX_LENGTH) return { kind: 'invalid', reason: 'v2 header too long' };
  if (data.length < 16 + length) return { kind: 'incomplete' };
  const consumed = 16 + length;
  const command = versionCommand & 0x0f;
  if (command === 0x0) return { kind: 'header', consumed };
  if (command !== 0x1) return { kind: 'invalid', reason: 'unknown v2 command' };
  const family = data[13] >> 4;
  const body = data.subarray(16, consumed);
  if (family === 0x1 && body.length >= 12) {
    return {
      kind: 'header',
      consumed,
      addresses: {
        remoteAddress: [...body.subarray(0, 4)].join('.'),
        localAddress: [...body.subarray(4, 8)].join('.'),
        remotePort: body.readUInt16BE(8),
        localPort: body.readUInt16BE(10),
      },
    };
  }
  if (family === 0x2 && body.length >= 36) {
    return {
      kind: 'header',
      consumed,
      addresses: {
        remoteAddress: ipv6(body.subarray(0, 16)),
        localAddress: ipv6(body.subarray(16, 32)),
        remotePort: body.readUInt16BE(32),
        localPort: body.readUInt16BE(34),
      },
    };
  }
  // AF_UNSPEC or AF_UNIX: nothing we can use as a client address.
  return family === 0x0 ? { kind: 'header', consumed } : { kind: 'invalid', reason: 'unsupported v2 address family' };
}

function ipv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The WHATWG URL parser writes the canonical compressed form (RFC 5952).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/**
 * Reads a PROXY header from the start of `socket`. Bytes after it are put
 * back for the SMTP parser. Rejects on a malformed header, on close, or when
 * no complete header arrives within `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedAddresses | undefined> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const finish = (error: Error | undefined, value?: ProxiedAddresses) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (error) reject(error);
      else resolve(value);
    };
    const onClose = () => finish(new Error('connection closed before the PROXY header'));
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buffered = Buffer.concat([buffered, chunk]);
        const parsed = parseProxyHeader(buffered);
        if (parsed.kind === 'incomplete') continue;
        if (parsed.kind === 'invalid') return finish(new Error(`invalid PROXY header: ${parsed.reason}`));
        const rest = buffered.subarray(parsed.consumed);
        if (rest.length > 0) socket.unshift(rest);
        return finish(undefined, parsed.addresses);
      }
    };
    const timer = setTimeout(() => finish(new Error('no PROXY header in time')), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
    socket.once('error', onClose);
    onReadable();
  });
}
