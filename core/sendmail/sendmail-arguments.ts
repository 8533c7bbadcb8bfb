import { EXIT } from '../cli/exit-codes.js';
import { SendmailFailure } from './sendmail-failure.js';

export const SENDMAIL_USAGE = `usage: sendmail [-t] [-i] [-f sender] [-F full name] [-C config] [-B 7BIT|8BITMIME]
                [-N failure,delay,success|never] [-R full|hdrs] [-V envid] [recipient ...]

Reads a message on standard input and stores it for Petrel to deliver.
  -t             also send to the To:, Cc: and Bcc: addresses of the message (Bcc: is removed)
  -i, -oi        a line with a single "." is not the end of the message (read to end of input)
  -f, -r SENDER  the envelope sender (default: your login @ server.hostname)
  -F NAME        your full name, for the From: header when the message has none (default: $NAME)
  -C FILE        Petrel's config (default: $PETREL_CONFIG, /etc/petrel/mta.config.yaml, ./mta.config.yaml)
  -B TYPE        the body is 7BIT or 8BITMIME (default: detected)
  -N DSN         when the sender is told: failure, delay, success, or never
  -R RET         what a failure report returns: full message or hdrs
  -V ENVID       envelope id for delivery status notifications
  -bm            deliver mail (the default); other -b modes are not supported
Accepted and ignored as Postfix does: -Ac -Am -G -L label -h N -m -O opt=val -o<x> (-odi, -oem, ...) -U -v -X file -c -e x -p proto -x
Exit codes: 0 stored, 64 usage, 65 bad message, 71 no login name, 75 try again later, 77 no permission, 78 bad config.`;

export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** What `sendmail`'s command line asks for. */
export interface SendmailArguments {
  /** -t: recipients also come from the To:, Cc: and Bcc: headers (Resent-* when present). */
  readonly extractRecipients: boolean;
  /** Without -i/-oi, a line with a single "." ends the message (sendmail's archaic end of input). */
  readonly dotEndsInput: boolean;
  /** -f/-r as given ("" or "<>": the null sender). */
  readonly sender?: string;
  /** -F */
  readonly fullName?: string;
  /** -B */
  readonly bodyType?: '7bit' | '8bitmime';
  /** -N: RFC 3461 NOTIFY values. */
  readonly notify?: readonly DsnNotify[];
  /** -R */
  readonly ret?: 'FULL' | 'HDRS';
  /** -V */
  readonly envid?: string;
  /** -C */
  readonly configFile?: string;
  /** The recipients on the command line, as given (each may be a list: "a@x, b@y"). */
  readonly recipients: readonly string[];
  /** -bh, -bH, -q<interval>: Postfix does nothing and succeeds; so do we. */
  readonly nothingToDo: boolean;
  /** Warnings about values ignored (a bad -N or -V), for stderr. */
  readonly warnings: readonly string[];
  /** --help */
  readonly help: boolean;
}

/** Option letters that take a value, attached (-fme@x) or as the next argument (-f me@x): getopt's "A:B:C:F:L:N:O:R:V:X:b:e:f:h:o:p:q:r:". */
const TAKES_VALUE = new Set('ABCFLNORVXbefhopqr');
/** Letters accepted and ignored, as Postfix does. */
const IGNORED_FLAGS = new Set('GUcmvx');
const IGNORED_VALUES = new Set('ALOXehp');

const UNSUPPORTED_MODES: Record<string, string> = {
  d: 'daemon mode: run `petrel start`',
  p: 'listing the queue: run `petrel queue list`',
  s: 'SMTP on standard input is not supported: talk SMTP to a listener',
  i: 'Petrel has no aliases database: see the deliver-maildir plugin\'s mailboxes option',
  v: 'address verification is not supported',
  D: 'daemon mode: run `petrel start`',
};

/**
 * Parses sendmail's command line the way Postfix's sendmail does (getopt,
 * options and recipients in any order, `--` ends options), so that what cron
 * (`-FCronDaemon -i -B8BITMIME -oem root`), PHP (`-t -i`) and git send-email
 * pass works unchanged. Anything else is a usage error (exit 64).
 */
export function parseSendmailArguments(argv: readonly string[]): SendmailArguments {
  const result: Parsed = { extractRecipients: false, dotEndsInput: true, recipients: [], nothingToDo: false, warnings: [], help: false };
  let optionsEnded = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (optionsEnded || !arg.startsWith('-') || arg === '-') {
      result.recipients.push(arg);
      continue;
    }
    if (arg === '--') {
      optionsEnded = true;
      continue;
    }
    if (arg === '--help') {
      result.help = true;
      continue;
    }
    if (arg === '-q') throw usage('-q (flushing the queue): run `petrel queue retry --all`');
    for (let at = 1; at < arg.length; at++) {
      const letter = arg[at];
      if (!TAKES_VALUE.has(letter)) {
        applyFlag(result, letter);
        continue;
      }
      let value = arg.slice(at + 1);
      if (value === '') {
        if (i + 1 >= argv.length) throw usage(`option -${letter} needs a value`);
        value = argv[++i];
      }
      applyValue(result, letter, value);
      break;
    }
  }
  return result;
}

/** SendmailArguments while they are being parsed. */
type Parsed = { -readonly [K in keyof SendmailArguments]: SendmailArguments[K] } & { recipients: string[]; warnings: string[] };

function applyFlag(result: Parsed, letter: string): void {
  if (letter === 't') result.extractRecipients = true;
  else if (letter === 'i') result.dotEndsInput = false;
  else if (letter === 'I') throw usage(`-I: ${UNSUPPORTED_MODES.i}`);
  else if (letter === 'n') throw usage('-n is not supported');
  else if (!IGNORED_FLAGS.has(letter)) throw usage(`unknown option -${letter}`);
}

function applyValue(result: Parsed, letter: string, value: string): void {
  switch (letter) {
    case 'f':
    case 'r':
      result.sender = value;
      return;
    case 'F':
      result.fullName = value;
      return;
    case 'C':
      result.configFile = value;
      return;
    case 'B': {
      const type = value.toUpperCase();
      if (type !== '7BIT' && type !== '8BITMIME') throw usage(`-B needs 7BIT or 8BITMIME, not "${value}"`);
      result.bodyType = type === '7BIT' ? '7bit' : '8bitmime';
      return;
    }
    case 'N': {
      const notify = parseNotify(value);
      if (notify) result.notify = notify;
      else result.warnings.push(`bad -N value "${value}" ignored (give failure, delay, success, or never)`);
      return;
    }
    case 'R': {
      const ret = value.toUpperCase();
      if (ret === 'FULL' || ret === 'HDRS') result.ret = ret;
      return;
    }
    case 'V':
      // RFC 3461 ENVID: printable ASCII; Postfix ignores anything else with a warning.
      if (value.length <= 100 && /^[\x21-\x7e]+$/.test(value)) result.envid = value;
      else result.warnings.push('bad -V value ignored (up to 100 printable ASCII characters)');
      return;
    case 'b':
      if (value === 'm') return;
      if (value === 'h' || value === 'H') {
        result.nothingToDo = true;
        return;
      }
      throw usage(`-b${value}: ${UNSUPPORTED_MODES[value[0]] ?? 'unknown mode'}`);
    case 'o':
      if (value === 'i') result.dotEndsInput = false;
      return;
    case 'q':
      if (/^\d/.test(value)) {
        result.nothingToDo = true;
        return;
      }
      throw usage(`-q${value}: run \`petrel queue retry\` to deliver queued mail now`);
    default:
      if (!IGNORED_VALUES.has(letter)) throw usage(`unknown option -${letter}`);
  }
}

function parseNotify(value: string): DsnNotify[] | undefined {
  const words = value.toLowerCase().split(',').map((word) => word.trim()).filter(Boolean);
  if (words.length === 0) return undefined;
  if (words.length === 1 && words[0] === 'never') return ['NEVER'];
  if (!words.every((word) => word === 'failure' || word === 'delay' || word === 'success')) return undefined;
  return [...new Set(words)].map((word) => word.toUpperCase() as DsnNotify);
}

function usage(problem: string): SendmailFailure {
  return new SendmailFailure(EXIT.usage, `${problem}\n${SENDMAIL_USAGE}`);
}
