import { createServer, type Server, type Socket } from 'node:net';

/**
 * A milter written out in the test: a TCP server on loopback that speaks the
 * filter side of the Sendmail milter protocol from a script, the way the SMTP
 * sinks play remote hosts. It records every command each connection got (with
 * the macros sent before it) and answers as the script says: `continue` by
 * default, anything else (verdicts, changes at the end of the message,
 * progress, silence, garbage, a closed connection) when told. Its encoding
 * is written here from the protocol, not shared with the plugin, so the
 * plugin is checked against an independent reading of it.
 */

/** One command the milter received. */
export interface Received {
  /** The command letter: O, C, H, M, R, T, L, N, B, E, A, Q. */
  readonly code: string;
  readonly data: Buffer;
  /** The NUL-separated strings of the data (for C, H, M, R, L, E). */
  readonly strings: string[];
  /** Macros sent just before this command (SMFIC_MACRO for its letter). */
  readonly macros: Record<string, string>;
}

/** What to send back: packets (from the helpers below), or a way to fail. */
export type Answer = Buffer[] | 'silence' | 'close' | { readonly raw: Buffer } | { readonly timed: readonly { readonly afterMs: number; readonly packet: Buffer }[] };

export interface MilterScript {
  readonly version?: number;
  readonly actions?: number;
  readonly protocol?: number;
  /** setsymlist in the negotiation answer: stage number → macro names. */
  readonly macroLists?: readonly [number, string][];
  /** Answers by command letter; undefined (or no entry) means `continue`. Commands with no reply (A, Q, D) are never asked. */
  readonly answer?: (received: Received, connection: MilterConnectionLog) => Answer | undefined;
}

export interface MilterConnectionLog {
  readonly received: Received[];
  closedByPetrel: boolean;
}

export const SMFIP = {
  NOCONNECT: 0x01, NOHELO: 0x02, NOMAIL: 0x04, NORCPT: 0x08, NOBODY: 0x10, NOHDRS: 0x20, NOEOH: 0x40, NR_HDR: 0x80,
  NOUNKNOWN: 0x100, NODATA: 0x200, SKIP: 0x400, NR_CONN: 0x1000, NR_HELO: 0x2000, NR_MAIL: 0x4000, NR_RCPT: 0x8000,
  NR_DATA: 0x10000, NR_EOH: 0x40000, NR_BODY: 0x80000, HDR_LEADSPC: 0x100000,
} as const;
export const ALL_ACTIONS = 0x1ff;

const NO_REPLY: Record<string, number> = { C: SMFIP.NR_CONN, H: SMFIP.NR_HELO, M: SMFIP.NR_MAIL, R: SMFIP.NR_RCPT, T: SMFIP.NR_DATA, L: SMFIP.NR_HDR, N: SMFIP.NR_EOH, B: SMFIP.NR_BODY };

export class ScriptedMilter {
  readonly connections: MilterConnectionLog[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server, private readonly script: MilterScript) {
    this.#server = server;
  }

  /** Listens on a loopback port, or on the Unix socket `path` when given. */
  static async start(script: MilterScript = {}, path?: string): Promise<ScriptedMilter> {
    let milter: ScriptedMilter | undefined;
    const server = createServer((socket) => milter!.#serve(socket));
    milter = new ScriptedMilter(server, script);
    await new Promise<void>((resolve) => (path === undefined ? server.listen(0, '127.0.0.1', resolve) : server.listen(path, resolve)));
    return milter;
  }

  get socket(): string {
    const address = this.#server.address();
    return typeof address === 'string' ? `unix:${address}` : `inet:${(address as { port: number }).port}@127.0.0.1`;
  }

  /** Every command of every connection, in order, as letters. */
  codes(connection = 0): string {
    return (this.connections[connection]?.received ?? []).map((received) => received.code).join('');
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    const log: MilterConnectionLog = { received: [], closedByPetrel: false };
    this.connections.push(log);
    let pending = Buffer.alloc(0);
    let macros: Record<string, Record<string, string>> = {};
    let negotiatedProtocol = 0;
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('end', () => (log.closedByPetrel = true));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const length = pending.readUInt32BE(0);
        const code = String.fromCharCode(pending[4]);
        const data = pending.subarray(5, 4 + length);
        pending = pending.subarray(4 + length);
        if (code === 'D') {
          const strings = splitStrings(data.subarray(1));
          const set: Record<string, string> = {};
          for (let i = 0; i + 1 < strings.length; i += 2) set[strings[i]] = strings[i + 1];
          macros[String.fromCharCode(data[0])] = set;
          continue;
        }
        const received: Received = { code, data, strings: splitStrings(data), macros: macros[code] ?? {} };
        macros = {};
        log.received.push(received);
        if (code === 'O') {
          negotiatedProtocol = this.script.protocol ?? 0;
          socket.write(negotiation(this.script));
          continue;
        }
        if (code === 'A' || code === 'Q') continue;
        const answer = this.script.answer?.(received, log);
        if (answer === 'silence') continue;
        if (answer === 'close') {
          socket.destroy();
          return;
        }
        if (answer && 'timed' in answer) {
          for (const { afterMs, packet: later } of answer.timed) setTimeout(() => socket.writable && socket.write(later), afterMs);
          continue;
        }
        if (answer && 'raw' in answer) {
          socket.write(answer.raw);
          continue;
        }
        if (answer) {
          for (const packet of answer) socket.write(packet);
          continue;
        }
        if ((negotiatedProtocol & (NO_REPLY[code] ?? 0)) !== 0) continue;
        socket.write(packet('c'));
      }
    });
  }
}

function splitStrings(data: Buffer): string[] {
  const text = data.toString('latin1');
  const parts = text.split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts;
}

function negotiation(script: MilterScript): Buffer {
  const numbers = Buffer.alloc(12);
  numbers.writeUInt32BE(script.version ?? 6, 0);
  numbers.writeUInt32BE(script.actions ?? ALL_ACTIONS, 4);
  numbers.writeUInt32BE(script.protocol ?? 0, 8);
  const lists = (script.macroLists ?? []).map(([stage, names]) => {
    const where = Buffer.alloc(4);
    where.writeUInt32BE(stage, 0);
    return Buffer.concat([where, Buffer.from(`${names}\0`, 'latin1')]);
  });
  return packet('O', Buffer.concat([numbers, ...lists]));
}

/** One packet: length, letter, data. */
export function packet(code: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head.write(code, 4, 'latin1');
  return Buffer.concat([head, data]);
}

function strings(...values: string[]): Buffer {
  return Buffer.from(values.map((value) => `${value}\0`).join(''), 'utf8');
}

function indexed(index: number, ...values: string[]): Buffer {
  const number = Buffer.alloc(4);
  number.writeUInt32BE(index, 0);
  return Buffer.concat([number, strings(...values)]);
}

/** The answers a milter can give, as packets. */
export const milterSays = {
  continue: () => packet('c'),
  accept: () => packet('a'),
  reject: () => packet('r'),
  tempfail: () => packet('t'),
  discard: () => packet('d'),
  skip: () => packet('s'),
  progress: () => packet('p'),
  replyCode: (text: string) => packet('y', strings(text)),
  addHeader: (name: string, value: string) => packet('h', strings(name, value)),
  insertHeader: (index: number, name: string, value: string) => packet('i', indexed(index, name, value)),
  changeHeader: (index: number, name: string, value: string) => packet('m', indexed(index, name, value)),
  changeSender: (address: string, args?: string) => packet('e', args === undefined ? strings(address) : strings(address, args)),
  addRecipient: (address: string) => packet('+', strings(address)),
  addRecipientWithArgs: (address: string, args: string) => packet('2', strings(address, args)),
  deleteRecipient: (address: string) => packet('-', strings(address)),
  replaceBody: (chunk: string) => packet('b', Buffer.from(chunk, 'utf8')),
  quarantine: (reason: string) => packet('q', strings(reason)),
};
