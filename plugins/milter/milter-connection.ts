import { connect, isIP, type Socket } from 'node:net';
import { ALL_ACTIONS, Command, DataCursor, encodePacket, MacroStage, MILTER_VERSION, OFFERED_PROTOCOL, type Packet, PacketReader, ProtocolError, Reply, uint32, type MacroStageName } from './protocol.js';

/** Packets a milter may send ahead of being asked (none, in a sane milter) before it counts as broken. */
const MAX_UNREAD = 100;

/** Where a milter listens: `inet:PORT@HOST` (also `inet6:`) or `unix:/path`, as Postfix and Sendmail write it. */
export type Endpoint = { readonly kind: 'inet'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

export function parseEndpoint(socket: string): Endpoint | undefined {
  const inet = /^inet6?:(\d{1,5})@(\S+)$/.exec(socket);
  if (inet) {
    const port = Number(inet[1]);
    const host = inet[2].replace(/^\[(.*)\]$/, '$1');
    return port > 0 && port < 65536 && host !== '' ? { kind: 'inet', host, port } : undefined;
  }
  const unix = /^(?:unix|local):(\/\S*)$/.exec(socket);
  return unix ? { kind: 'unix', path: unix[1] } : undefined;
}

/** What the milter agreed to in option negotiation. */
export interface Negotiated {
  readonly version: number;
  /** SMFIF_* it may use. */
  readonly actions: number;
  /** SMFIP_* steps it skips or answers without a reply. */
  readonly protocol: number;
  /** Macro names it asked for per stage (setsymlist), replacing Petrel's defaults for that stage. */
  readonly macros: ReadonlyMap<MacroStageName, readonly string[]>;
}

/** The milter failed: it could not be reached, went quiet, closed or broke the protocol. */
export class MilterFailure extends Error {}

/**
 * One connection to one milter: packets out, packets in, a timeout for each
 * answer awaited. Any failure (refused, timeout, closed, a malformed or
 * oversized packet) ends the connection and rejects every later read with a
 * MilterFailure; nothing a milter sends can throw past this class.
 */
export class MilterConnection {
  readonly #socket: Socket;
  readonly #reader = new PacketReader();
  readonly #received: Packet[] = [];
  #waiting?: { resolve: (packet: Packet) => void; reject: (error: Error) => void };
  #failure?: MilterFailure;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const packet of this.#reader.push(chunk)) this.#deliver(packet);
      } catch (error) {
        this.#fail(new MilterFailure(error instanceof Error ? error.message : String(error)));
      }
    });
    socket.on('error', (error) => this.#fail(new MilterFailure(`connection failed: ${error.message}`)));
    socket.on('close', () => this.#fail(new MilterFailure('closed the connection')));
  }

  static open(endpoint: Endpoint, timeoutMs: number): Promise<MilterConnection> {
    return new Promise((resolve, reject) => {
      const socket = endpoint.kind === 'unix' ? connect({ path: endpoint.path }) : connect({ host: endpoint.host, port: endpoint.port, family: isIP(endpoint.host) || undefined });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new MilterFailure(`did not accept the connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new MilterConnection(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new MilterFailure(`cannot connect: ${error.message}`));
      });
    });
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** SMFIC_OPTNEG: offers version 6, every action and every protocol step option; checks what comes back. */
  async negotiate(timeoutMs: number): Promise<Negotiated> {
    this.send(Command.optionNegotiation, Buffer.concat([uint32(MILTER_VERSION), uint32(ALL_ACTIONS), uint32(OFFERED_PROTOCOL)]));
    const packet = await this.read(timeoutMs);
    if (packet.code !== Reply.optionNegotiation) throw this.#fail(new MilterFailure(`answered option negotiation with "${printable(packet.code)}"`));
    try {
      const cursor = new DataCursor(packet.data);
      const version = cursor.uint32();
      const actions = cursor.uint32();
      const protocol = cursor.uint32();
      if (version < 2 || version > MILTER_VERSION) throw new ProtocolError(`it speaks protocol version ${version} (Petrel speaks 2 to ${MILTER_VERSION})`);
      if ((actions & ~ALL_ACTIONS) !== 0) throw new ProtocolError(`it wants actions 0x${actions.toString(16)} that Petrel did not offer`);
      const macros = new Map<MacroStageName, string[]>();
      while (cursor.remaining > 0) {
        const stage = cursor.uint32();
        const names = cursor.string().split(/[\s,]+/).filter(Boolean);
        const name = (Object.keys(MacroStage) as MacroStageName[]).find((key) => MacroStage[key] === stage);
        if (name) macros.set(name, names);
      }
      // Steps Petrel did not offer to leave out are still sent; only offered bits count.
      return { version, actions, protocol: protocol & OFFERED_PROTOCOL, macros };
    } catch (error) {
      throw this.#fail(new MilterFailure(`broke option negotiation: ${(error as Error).message}`));
    }
  }

  send(code: string, data?: Buffer): void {
    if (this.#failure) throw this.#failure;
    this.#socket.write(encodePacket(code, data));
  }

  /** The next packet, or a MilterFailure when none comes within `timeoutMs` or the connection is gone. */
  read(timeoutMs: number): Promise<Packet> {
    const queued = this.#received.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<Packet>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new MilterFailure(`did not answer within ${timeoutMs} ms`)), timeoutMs);
      this.#waiting = {
        resolve: (packet) => {
          clearTimeout(timer);
          resolve(packet);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  /** SMFIC_QUIT and close; a milter that is gone already is fine. */
  quit(): void {
    if (!this.#failure) {
      this.#socket.end(encodePacket(Command.quit));
      this.#failure = new MilterFailure('the session ended');
    }
    this.#socket.destroySoon();
  }

  /** Ends the connection now (a timeout of the whole hook, or a broken milter). */
  destroy(reason: string): void {
    this.#fail(new MilterFailure(reason));
  }

  #deliver(packet: Packet): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting) waiting.resolve(packet);
    else if (this.#received.length >= MAX_UNREAD) this.#fail(new MilterFailure(`sent more than ${MAX_UNREAD} packets nobody asked for`));
    else this.#received.push(packet);
  }

  #fail(failure: MilterFailure): MilterFailure {
    if (!this.#failure) this.#failure = failure;
    this.#socket.destroy();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#failure);
    return this.#failure;
  }
}

function printable(code: string): string {
  return /^[\x21-\x7e]$/.test(code) ? code : `0x${code.charCodeAt(0).toString(16)}`;
}
