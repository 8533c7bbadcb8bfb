import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { CommandContext, PluginCommand } from 'petrel';
import { hashPassword } from './password-hash.js';
import { loginProblem, normalizeLogin, parseUsers, updateUsersFile, usersFilePath } from './users-file.js';

const MIN_PASSWORD_LENGTH = 8;

/**
 * `petrel user add|passwd|remove|list`: edits the users file of the
 * auth-file plugin the config enables (or the file given with
 * --users-file). A running server picks the change up on the next AUTH.
 */
export const userCommand: PluginCommand = {
  name: 'user',
  usage: 'add|passwd LOGIN [--password-stdin] | remove LOGIN | list   [--users-file FILE]',
  description: 'add a user or change a password (asked on the terminal, or --password-stdin), remove a user, list the logins',
  options: {
    'password-stdin': { type: 'boolean' },
    'users-file': { type: 'string' },
  },
  run: editUsers,
};

async function editUsers(context: CommandContext): Promise<number> {
  const [action, rawLogin] = context.args;
  const fail = (message: string): number => {
    context.err(message);
    return 1;
  };
  if (action === undefined) return context.usage('which user command?');
  if (!['add', 'passwd', 'remove', 'list'].includes(action)) return context.usage(`unknown user command "${action}"`);
  if (action !== 'list' && !rawLogin) return context.usage(`user ${action}: the LOGIN is missing`);
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
  if (problem) return context.usage(`user ${action}: ${problem}`);

  let hash: string | undefined;
  if (action === 'add' || action === 'passwd') {
    const password = await readPassword(context);
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

async function usersFile(context: CommandContext): Promise<string | undefined> {
  const given = context.flags['users-file'];
  if (typeof given === 'string') return given;
  const options = await context.pluginOptions<{ file: string }>();
  if (options === undefined) return undefined;
  return usersFilePath((await context.paths()).dataDir, options.file);
}

/** The first line of stdin, or asked twice on the terminal without echo. */
async function readPassword(context: CommandContext): Promise<string | Error> {
  const { stdin } = context;
  if (context.flags['password-stdin'] === true) {
    let text = '';
    for await (const chunk of stdin) text += String(chunk);
    return text.split(/\r?\n/)[0];
  }
  if (!stdin.isTTY) return new Error('no terminal to ask for the password on; pipe it in with --password-stdin');
  const first = await ask(stdin, 'Password: ');
  const second = await ask(stdin, 'Again: ');
  return first === second ? first : new Error('the two passwords differ');
}

function ask(input: NodeJS.ReadStream, prompt: string): Promise<string> {
  process.stderr.write(prompt);
  // Typed characters are not echoed: the terminal output goes to a sink.
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input, output: silent, terminal: true });
  return new Promise((resolve) => {
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}
