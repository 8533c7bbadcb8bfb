import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { loadConfigFile } from '../../config/load.js';
import { makePaths } from '../../paths.js';
import { options as authFileOptions, usersFilePath } from '../../../plugins/auth-file/index.js';
import { hashPassword } from '../../../plugins/auth-file/password-hash.js';
import { loginProblem, normalizeLogin, parseUsers, updateUsersFile } from '../../../plugins/auth-file/users-file.js';
import type { CliContext } from '../petrel.js';

const USAGE = 'usage: petrel user add|passwd LOGIN [--password-stdin] | remove LOGIN | list   [--users-file FILE]';
const MIN_PASSWORD_LENGTH = 8;

/**
 * `petrel user add|passwd|remove|list`: edits the users file of the
 * auth-file plugin named in the config (or the file given with
 * --users-file). A running server picks the change up on the next AUTH.
 */
export async function userCommand(context: CliContext): Promise<number> {
  const [action, rawLogin] = context.args;
  const fail = (message: string): number => {
    process.stderr.write(`petrel user: ${message}\n`);
    return 1;
  };
  if (action === undefined) return context.usage('which user command?', USAGE);
  if (!['add', 'passwd', 'remove', 'list'].includes(action)) return context.usage(`unknown user command "${action}"`, USAGE);
  if (action !== 'list' && !rawLogin) return context.usage(`user ${action}: the LOGIN is missing`, USAGE);
  const path = await usersFile(context);
  if (path === undefined) return fail(`${context.configFile} enables no auth-file plugin; name the file with --users-file`);

  if (action === 'list') {
    const text = await readFile(path, 'utf8').catch(() => '');
    const logins = [...parseUsers(text, path).keys()].sort();
    for (const login of logins) context.out(login);
    if (logins.length === 0) context.out(`no users in ${path}`);
    return 0;
  }

  const login = normalizeLogin(rawLogin);
  const problem = loginProblem(login);
  if (problem) return context.usage(`user ${action}: ${problem}`, USAGE);

  let hash: string | undefined;
  if (action === 'add' || action === 'passwd') {
    const password = await readPassword(context.flags['password-stdin'] === true);
    if (password instanceof Error) return fail(password.message);
    if (password.length < MIN_PASSWORD_LENGTH) return fail(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    hash = await hashPassword(password);
  }
  let refusal: string | undefined;
  await updateUsersFile(path, (users) => {
    const exists = users.has(login);
    if (action === 'add' && exists) refusal = `${login} exists already (use petrel user passwd ${login})`;
    else if (action !== 'add' && !exists) refusal = `no user ${login} in ${path}`;
    else if (action === 'remove') users.delete(login);
    else users.set(login, hash as string);
  });
  if (refusal) return fail(refusal);
  context.out(`${action === 'add' ? 'added' : action === 'passwd' ? 'password changed for' : 'removed'} ${login} (${path})`);
  return 0;
}

async function usersFile(context: CliContext): Promise<string | undefined> {
  const given = context.flags['users-file'];
  if (typeof given === 'string') return given;
  const loaded = await loadConfigFile(context.configFile);
  const entry = loaded.config.plugins.find((plugin) => plugin.name === 'auth-file' && plugin.enabled);
  if (!entry) return undefined;
  const parsed = authFileOptions.parse(entry.options);
  return usersFilePath(makePaths(loaded.baseDir, loaded.config.server.dataDir).dataDir, parsed.file);
}

/** The first line of stdin, or asked twice on the terminal without echo. */
async function readPassword(fromStdin: boolean): Promise<string | Error> {
  if (fromStdin) {
    let text = '';
    for await (const chunk of process.stdin) text += String(chunk);
    return text.split(/\r?\n/)[0];
  }
  if (!process.stdin.isTTY) return new Error('no terminal to ask for the password on; pipe it in with --password-stdin');
  const first = await ask('Password: ');
  const second = await ask('Again: ');
  return first === second ? first : new Error('the two passwords differ');
}

function ask(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  // Typed characters are not echoed: the terminal output goes to a sink.
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}
