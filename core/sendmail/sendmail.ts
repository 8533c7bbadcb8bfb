import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { Readable } from 'node:stream';
import { ConfigError } from '../config/config-error.js';
import { loadServerSettings, type ServerSettings } from '../config/server-settings.js';
import { makePaths } from '../paths.js';
import { asOwnerOf } from '../privileges/as-owner.js';
import { newQueueId } from '../queue/queue-id.js';
import { EXIT, type ExitCode } from '../cli/exit-codes.js';
import { SendmailFailure } from './sendmail-failure.js';
import { ensureMaildrop, maildropDirectory, MaildropWriter } from './maildrop.js';
import { readMessage } from './message-input.js';
import { parseSendmailArguments, SENDMAIL_USAGE, type SendmailArguments } from './sendmail-arguments.js';
import { addressesIn, isAscii, senderFrom, uniqueAddresses } from './submission-addresses.js';
import { prepareHeaders } from './submission-headers.js';

export interface SendmailIo {
  readonly stdin: Readable;
  readonly out: (text: string) => void;
  /** One line for the user (cron mails it, PHP logs it). */
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

/** Where the config is when -C does not say: $PETREL_CONFIG, the system's, then the working directory's. */
const DEFAULT_CONFIGS = ['/etc/petrel/mta.config.yaml', 'mta.config.yaml'];

/** Errors of the file system that go away by themselves (a full disk is freed, a quota raised). */
const TEMPORARY = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EROFS']);

/**
 * `petrel sendmail` (and the `sendmail` command): reads a message on
 * standard input, as cron, PHP's mail(), git send-email and monitoring tools
 * give it, and stores it in the maildrop of the server's data directory
 * (maildrop.ts), from where the running server queues it at once, or a
 * stopped one when it starts. Exit 0 means the message is on disk, synced;
 * anything else is a sendmail exit code with one line on stderr, and nothing
 * was kept.
 */
export async function runSendmail(argv: readonly string[], io: SendmailIo): Promise<ExitCode> {
  try {
    const args = parseSendmailArguments(argv);
    if (args.help) {
      io.out(`${SENDMAIL_USAGE}\n`);
      return EXIT.ok;
    }
    for (const warning of args.warnings) io.err(warning);
    if (args.nothingToDo) return EXIT.ok;
    const settings = await settingsFor(args, io.env);
    await submit(args, settings, io);
    return EXIT.ok;
  } catch (error) {
    const failure = asFailure(error);
    io.err(failure.message);
    return failure.code;
  }
}

async function submit(args: SendmailArguments, settings: ServerSettings, io: SendmailIo): Promise<void> {
  const origin = settings.server.hostname;
  const sender = senderOf(args, origin);
  const given = args.recipients.map((list) => addressesIn(list, origin));
  const invalid = given.flatMap((list) => list.invalid);
  if (invalid.length > 0) throw new SendmailFailure(EXIT.usage, `"${invalid[0]}" is not an address; nothing was sent`);
  const fromCommandLine = given.flatMap((list) => list.addresses);
  if (!args.extractRecipients && fromCommandLine.length === 0) {
    throw new SendmailFailure(EXIT.usage, `no recipients: name them on the command line, or use -t to take them from the message\n${SENDMAIL_USAGE}`);
  }

  const { dataDir } = makePaths(settings.baseDir, settings.server.dataDir);
  const directory = await maildropFor(dataDir);
  const id = newQueueId();
  const writer = await MaildropWriter.create(directory, id).catch((error: unknown) => {
    throw writeFailure(error, directory, dataDir);
  });
  try {
    let extracted: string[] = [];
    const input = await readMessage(io.stdin, {
      dotEndsInput: args.dotEndsInput,
      maxBytes: settings.limits.messageSize,
      maxHeaderBytes: settings.limits.headerSize,
      headers: (block) => {
        const prepared = prepareHeaders(block, { extractRecipients: args.extractRecipients, sender, fullName: args.fullName ?? io.env.NAME, origin, queueId: id, now: new Date() });
        extracted = prepared.recipients;
        return prepared.headerBlock;
      },
      write: (chunk) => writer.write(chunk),
    });
    const recipients = uniqueAddresses([...fromCommandLine, ...extracted]);
    if (recipients.length === 0) throw new SendmailFailure(EXIT.usage, 'no recipient addresses found in the message header (-t); nothing was sent');
    await writer.commit({
      from: sender,
      to: recipients,
      ...(args.notify ? { notify: [...args.notify] } : {}),
      ...(args.ret ? { ret: args.ret } : {}),
      ...(args.envid ? { envid: args.envid } : {}),
      bodyType: args.bodyType ?? (input.eightBit ? '8bitmime' : '7bit'),
      smtpUtf8: input.eightBitHeaders || ![sender, ...recipients].every(isAscii),
    });
  } catch (error) {
    await writer.abort();
    throw error instanceof SendmailFailure ? error : writeFailure(error, directory, dataDir);
  }
}

async function settingsFor(args: SendmailArguments, env: NodeJS.ProcessEnv): Promise<ServerSettings> {
  const file = args.configFile ?? env.PETREL_CONFIG ?? DEFAULT_CONFIGS.find((candidate) => existsSync(candidate));
  if (file === undefined) {
    throw new SendmailFailure(EXIT.config, `no config: give -C FILE or set PETREL_CONFIG (looked for ${DEFAULT_CONFIGS.join(' and ')})`);
  }
  try {
    return await loadServerSettings(file, env);
  } catch (error) {
    if (error instanceof ConfigError) throw new SendmailFailure(EXIT.config, error.message);
    throw error;
  }
}

/** -f as given, or the invoking user at server.hostname (Postfix's myorigin). */
function senderOf(args: SendmailArguments, origin: string): string {
  if (args.sender !== undefined) {
    const sender = senderFrom(args.sender, origin);
    if (sender === undefined) throw new SendmailFailure(EXIT.usage, `-f "${args.sender}" is not an address`);
    return sender;
  }
  let login: string;
  try {
    login = userInfo().username;
  } catch {
    throw new SendmailFailure(EXIT.osError, `no login name for user id ${process.getuid?.()}: give the sender with -f`);
  }
  return `${login}@${origin}`;
}

/**
 * The maildrop directory. The server makes it when it starts; before that,
 * root or the data directory's owner may make it here (owned like the data
 * directory, so the server can use it), anyone else is told to start Petrel.
 */
async function maildropFor(dataDir: string): Promise<string> {
  const directory = maildropDirectory(dataDir);
  try {
    if ((await stat(directory)).isDirectory()) return directory;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw writeFailure(error, directory, dataDir);
  }
  let owner;
  try {
    owner = await stat(dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw writeFailure(error, directory, dataDir);
    throw new SendmailFailure(EXIT.tempFail, `Petrel's data directory ${dataDir} does not exist yet: start Petrel once (it makes it), then send again; nothing was sent`);
  }
  const me = process.getuid?.();
  if (me !== 0 && me !== owner.uid) {
    throw new SendmailFailure(EXIT.tempFail, `${directory} does not exist yet: Petrel makes it when it starts; nothing was sent`);
  }
  // Root makes it as the data directory's owner: a mkdir and chmod by name, as root, in a directory that user controls could be led anywhere.
  return asOwnerOf(dataDir, () => ensureMaildrop(dataDir)).catch((error: unknown) => {
    throw writeFailure(error, directory, dataDir);
  });
}

function writeFailure(error: unknown, directory: string, dataDir: string): SendmailFailure {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === 'EACCES' || code === 'EPERM') {
    return new SendmailFailure(
      EXIT.noPermission,
      `cannot write into ${directory} (permission denied): the data directory must let you pass (chmod o+x ${dataDir}, ` +
        'or a group the server shares with you); see docs/operations.md, "sendmail"; nothing was sent',
    );
  }
  if (TEMPORARY.has(code)) return new SendmailFailure(EXIT.tempFail, `cannot store the message in ${directory} now (${(error as Error).message}); nothing was sent`);
  return asFailure(error);
}

function asFailure(error: unknown): SendmailFailure {
  if (error instanceof SendmailFailure) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (TEMPORARY.has(code)) return new SendmailFailure(EXIT.tempFail, `${(error as Error).message}; nothing was sent`);
  return new SendmailFailure(EXIT.software, `unexpected error: ${(error as Error)?.stack ?? String(error)}`);
}
