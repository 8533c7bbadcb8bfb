import type { Address, IncomingMessage } from 'petrel';
import { connectData, DEFAULT_MACROS, envelopeData, macroPacketData, type MacroValues } from './macros.js';
import { type Endpoint, MilterConnection, MilterFailure, type Negotiated } from './milter-connection.js';
import { type Modification, parseAnswer, type Verdict } from './milter-replies.js';
import { Actions, BODY_CHUNK, Command, cstrings, type MacroStageName, Protocol, ProtocolError, Reply } from './protocol.js';

export type DefaultAction = 'tempfail' | 'accept' | 'reject';

export interface MilterSettings {
  readonly name: string;
  readonly socket: string;
  readonly endpoint: Endpoint;
  /** How long each answer may take (a progress message starts it again), and the connection. */
  readonly timeout: number;
  readonly defaultAction: DefaultAction;
  /** The most a replaced body may hold (the server's message size limit). */
  readonly maxBodyBytes: number;
}

/** What one step came to for Petrel. */
export type StepOutcome =
  | { readonly kind: 'continue' }
  /** The milter refused: reject, tempfail or a reply code of its own. */
  | { readonly kind: 'refuse'; readonly verdict: Verdict }
  | { readonly kind: 'discard' }
  /** The milter failed (now or earlier in the session) and its defaultAction is tempfail or reject. */
  | { readonly kind: 'failed'; readonly reason: string };

/** The end of the message: the changes asked for come with a `continue`. */
export type MessageOutcome = StepOutcome | { readonly kind: 'modify'; readonly modifications: readonly Modification[] };

const CONTINUE: StepOutcome = { kind: 'continue' };

/** Which negotiated action each modification needs. */
const ACTION_OF: Record<string, number> = {
  [Reply.addHeader]: Actions.addHeaders,
  [Reply.insertHeader]: Actions.addHeaders,
  [Reply.changeHeader]: Actions.changeHeaders,
  [Reply.changeSender]: Actions.changeSender,
  [Reply.addRecipient]: Actions.addRecipients,
  [Reply.addRecipientWithArgs]: Actions.addRecipientsWithArgs,
  [Reply.deleteRecipient]: Actions.deleteRecipients,
  [Reply.replaceBody]: Actions.changeBody,
  [Reply.quarantine]: Actions.quarantine,
};

/**
 * One milter for one SMTP session: its own connection, opened at connect and
 * closed when the session ends, and where it stands. Steps the milter asked
 * to leave out are not sent, steps it answers without a reply are not waited
 * for, and a message it accepted (or that ended before its end-of-message)
 * is not sent further. A milter that fails is given up for the session: with
 * defaultAction `accept` it is skipped from then on, otherwise each later
 * step answers `failed` again, so the session keeps getting the same answer.
 */
export class MilterSession {
  #connection?: MilterConnection;
  #negotiated?: Negotiated;
  #state: 'new' | 'active' | 'skipped' | 'failed' = 'new';
  #failure = '';
  /** MAIL was sent and the message has not reached its end: an ABORT is owed before the next one. */
  #messageOpen = false;
  /** The milter accepted (or discarded) the message: the rest of it is not sent. */
  #messageDone = false;

  constructor(
    readonly settings: MilterSettings,
    private readonly onFailure: (settings: MilterSettings, reason: string) => void,
  ) {}

  get negotiated(): Negotiated | undefined {
    return this.#negotiated;
  }

  /** Why the milter was given up in this session, if it was. */
  get failure(): string | undefined {
    return this.#failure === '' ? undefined : this.#failure;
  }

  /** Connects, negotiates and reports the connection (SMFIC_CONNECT). */
  async connect(values: MacroValues, signal?: AbortSignal): Promise<StepOutcome> {
    return this.#guard(signal, async () => {
      this.#connection = await MilterConnection.open(this.settings.endpoint, this.settings.timeout);
      this.#state = 'active';
      this.#negotiated = await this.#connection.negotiate(this.settings.timeout);
      return this.#connectionLevel(await this.#step('connect', Command.connect, connectDataOf(values), Protocol.noConnect, Protocol.noReplyConnect, values));
    });
  }

  async helo(hostname: string, values: MacroValues, signal?: AbortSignal): Promise<StepOutcome> {
    return this.#guard(signal, async () => this.#connectionLevel(await this.#step('helo', Command.helo, cstrings(hostname), Protocol.noHelo, Protocol.noReplyHelo, values)));
  }

  async mail(from: Address, values: MacroValues, signal?: AbortSignal): Promise<StepOutcome> {
    return this.#guard(signal, async () => {
      this.#abortOpenMessage();
      this.#messageOpen = true;
      this.#messageDone = false;
      return this.#messageLevel(await this.#step('mail', Command.mail, envelopeData(from), Protocol.noMail, Protocol.noReplyMail, values));
    });
  }

  async rcpt(recipient: Address, values: MacroValues, signal?: AbortSignal): Promise<StepOutcome> {
    return this.#guard(signal, async () => {
      if (this.#messageDone) return CONTINUE;
      return this.#messageLevel(await this.#step('rcpt', Command.rcpt, envelopeData(recipient), Protocol.noRcpt, Protocol.noReplyRcpt, values));
    });
  }

  async data(values: MacroValues, signal?: AbortSignal): Promise<StepOutcome> {
    return this.#guard(signal, async () => {
      if (this.#messageDone || (this.#negotiated?.version ?? 0) < 4) return CONTINUE;
      return this.#messageLevel(await this.#step('data', Command.data, undefined, Protocol.noData, Protocol.noReplyData, values));
    });
  }

  /**
   * Headers, end of headers, the body in chunks of at most 64 KiB, and the end
   * of the message, whose answer carries the changes the milter wants.
   */
  async message(message: IncomingMessage, values: MacroValues, signal?: AbortSignal): Promise<MessageOutcome> {
    return this.#guard<MessageOutcome>(signal, async () => {
      if (this.#messageDone) return CONTINUE;
      const protocol = this.#negotiated!.protocol;
      const leadingSpace = (protocol & Protocol.headerLeadingSpace) !== 0;
      for (const field of message.headers.rawList()) {
        const value = headerValueForMilter(field.value, leadingSpace);
        const outcome = this.#messageLevel(await this.#step(undefined, Command.header, cstrings(field.name, value), Protocol.noHeaders, Protocol.noReplyHeader, values));
        if (outcome.kind !== 'continue' || this.#messageDone) return outcome;
      }
      const endOfHeaders = this.#messageLevel(await this.#step('endOfHeaders', Command.endOfHeaders, undefined, Protocol.noEndOfHeaders, Protocol.noReplyEndOfHeaders, values));
      if (endOfHeaders.kind !== 'continue' || this.#messageDone) return endOfHeaders;
      if ((protocol & Protocol.noBody) === 0) {
        for await (const chunk of bodyChunks(message)) {
          const verdict = await this.#step(undefined, Command.body, chunk, Protocol.noBody, Protocol.noReplyBody, values);
          if (verdict.kind === 'skip') break;
          const outcome = this.#messageLevel(verdict);
          if (outcome.kind !== 'continue' || this.#messageDone) return outcome;
        }
      }
      this.#sendMacros('endOfMessage', Command.endOfMessage, values);
      this.#connection!.send(Command.endOfMessage);
      const modifications: Modification[] = [];
      const verdict = await this.#answer(modifications);
      this.#messageOpen = false;
      const outcome = this.#messageLevel(verdict);
      return outcome.kind === 'continue' ? { kind: 'modify', modifications } : outcome;
    });
  }

  /** The session ended: ABORT an unfinished message, QUIT, close. */
  close(): void {
    if (this.#state === 'active') {
      try {
        this.#abortOpenMessage();
      } catch {
        // Gone already; quitting below is all that is left.
      }
    }
    this.#connection?.quit();
    if (this.#state === 'active') this.#state = 'skipped';
  }

  /** Runs one step; turns any failure into the milter's default outcome. */
  async #guard<T extends MessageOutcome>(signal: AbortSignal | undefined, step: () => Promise<T>): Promise<T | StepOutcome> {
    if (this.#state === 'skipped') return CONTINUE;
    if (this.#state === 'failed') return { kind: 'failed', reason: this.#failure };
    const onAbort = () => this.#connection?.destroy('the hook ran out of time');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await step();
    } catch (error) {
      const reason = error instanceof MilterFailure || error instanceof ProtocolError ? error.message : `failed: ${(error as Error).message}`;
      this.#connection?.destroy(reason);
      this.#failure = reason;
      this.#state = this.settings.defaultAction === 'accept' ? 'skipped' : 'failed';
      this.onFailure(this.settings, reason);
      return this.#state === 'skipped' ? CONTINUE : { kind: 'failed', reason };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Sends a step's macros and command unless the milter left it out; waits for its verdict unless it said it would not answer. */
  async #step(stage: MacroStageName | undefined, command: string, data: Buffer | undefined, leftOut: number, noReply: number, values: MacroValues): Promise<Verdict> {
    const protocol = this.#negotiated!.protocol;
    if ((protocol & leftOut) !== 0) return { kind: 'continue' };
    if (stage) this.#sendMacros(stage, command, values);
    this.#connection!.send(command, data);
    if ((protocol & noReply) !== 0) return { kind: 'continue' };
    return this.#answer(undefined);
  }

  #sendMacros(stage: MacroStageName, command: string, values: MacroValues): void {
    const wanted = this.#negotiated!.macros.get(stage) ?? DEFAULT_MACROS[stage];
    const data = macroPacketData(command, wanted, values);
    if (data) this.#connection!.send(Command.macro, data);
  }

  /** Reads until a verdict. Progress restarts the timeout; changes are only valid at the end of the message (`modifications` given). */
  async #answer(modifications: Modification[] | undefined): Promise<Verdict> {
    let replaced = 0;
    for (;;) {
      const packet = await this.#connection!.read(this.settings.timeout);
      const answer = parseAnswer(packet);
      if (answer.type === 'verdict') return answer.verdict;
      if (answer.type === 'progress') continue;
      if (!modifications) throw new ProtocolError(`asked to change the message (${answer.modification.kind}) before its end`);
      if ((this.#negotiated!.actions & ACTION_OF[packet.code]) === 0) throw new ProtocolError(`asked to ${answer.modification.kind} without having negotiated it`);
      if (answer.modification.kind === 'replaceBody') {
        replaced += answer.modification.chunk.length;
        if (replaced > this.settings.maxBodyBytes) throw new ProtocolError(`replaced the body with more than ${this.settings.maxBodyBytes} bytes`);
      }
      modifications.push(answer.modification);
    }
  }

  /** At connect and HELO, accept means the whole connection: the milter is done for the session. */
  #connectionLevel(verdict: Verdict): StepOutcome {
    if (verdict.kind === 'accept') {
      this.#connection?.quit();
      this.#state = 'skipped';
      return CONTINUE;
    }
    return this.#outcome(verdict);
  }

  /** From MAIL to the end of the message, accept means this message: the rest of it is not sent. */
  #messageLevel(verdict: Verdict): StepOutcome {
    if (verdict.kind === 'accept') {
      this.#messageDone = true;
      return CONTINUE;
    }
    const outcome = this.#outcome(verdict);
    if (outcome.kind === 'discard') this.#messageDone = true;
    return outcome;
  }

  #outcome(verdict: Verdict): StepOutcome {
    switch (verdict.kind) {
      case 'continue':
      case 'skip':
        return CONTINUE;
      case 'discard':
        return { kind: 'discard' };
      default:
        return { kind: 'refuse', verdict };
    }
  }

  #abortOpenMessage(): void {
    if (!this.#messageOpen) return;
    this.#messageOpen = false;
    this.#connection?.send(Command.abort);
  }
}

function connectDataOf(values: MacroValues): Buffer {
  return connectData({
    address: values.get('client_addr') ?? '',
    port: Number(values.get('client_port') ?? 0),
    hostname: values.get('client_ptr') === 'unknown' ? undefined : values.get('client_ptr'),
  });
}

/**
 * A header value as milters expect it: line ends as LF (Sendmail's and
 * Postfix's internal form), and without the space after the colon unless the
 * milter asked for it (SMFIP_HDR_LEADSPC, which DKIM signers do).
 */
function headerValueForMilter(raw: Buffer, leadingSpace: boolean): Buffer {
  let value = raw.toString('latin1').replace(/\r\n/g, '\n');
  if (!leadingSpace && value.startsWith(' ')) value = value.slice(1);
  return Buffer.from(value, 'latin1');
}

/** The body in chunks of at most BODY_CHUNK bytes, whatever sizes the file reads in. */
async function* bodyChunks(message: IncomingMessage): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const piece of message.body()) {
    pending = pending.length === 0 ? (piece as Buffer) : Buffer.concat([pending, piece as Buffer]);
    while (pending.length >= BODY_CHUNK) {
      yield pending.subarray(0, BODY_CHUNK);
      pending = pending.subarray(BODY_CHUNK);
    }
  }
  if (pending.length > 0) yield pending;
}
