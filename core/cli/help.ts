import { discoverPluginCommands, type OfferedCommand } from './plugin-commands.js';

const CORE_COMMANDS = `usage: petrel <command> [options]

commands:
  start                  run the MTA
  reload                 make the running server re-read its config (like SIGHUP), with its answer
  check-config           validate the config (and plugin options); exit 78 on problems
  config schema          print the JSON Schema of mta.config.yaml (for editors and CI)
  queue list             list queued messages [--state active|deferred|held] [--domain D] [--sender S] [--older-than 4h] [--limit N [--after CURSOR]]
  queue show ID          one message: envelope, recipients, headers, and its history as a timeline
                         (sessions, plugin verdicts, each delivery attempt; also once it left the queue)
  queue retry ID|--all   make a message (or every message not held) due now
  queue hold ID          keep a message from being delivered until it is released
  queue release ID       release a held message (due now)
  queue delete ID        remove a message without notifying anyone
  queue bounce ID        fail every open recipient now and send the sender a DSN
  queue stats            counts by state and by destination
                         (every queue command takes --json; with a server running on the
                          same data directory it goes through the server's control socket)
  why QUERY              what happened to the messages a queue id, Message-ID, sender or recipient
                         names, refused ones included [--since 2d] [--limit N] [--json]
  trace server           every line of inbound SMTP sessions, live, with hook verdicts
                         [--source CIDR ...] [--listener NAME] [--sender A] [--rcpt A] [--only-one] [--terse]
  trace client           every line of outbound SMTP sessions, live [--domain D] [--mx HOST] [--queue-id ID] [--terse]
                         (traces come from the admin listener: admin.token, or --admin URL)
  init DIR [--hostname H] [--domain D] [--force]
                         make a site directory: a commented mta.config.yaml for host H and
                         local domain D, data/, and a package.json for plugins installed there
  sendmail [-t] [-i] [-f SENDER] [-F NAME] [-C FILE] [RECIPIENT...]
                         the sendmail command for local programs: a message on stdin
                         (petrel sendmail --help for its flags)
  plugin new NAME [--dir DIR]
                         scaffold a plugin package (TypeScript, options schema, a hook, a test
                         that speaks SMTP to it) in DIR, ./NAME by default
`;

const OPTIONS = `options:
  -c, --config FILE      config file (default: $PETREL_CONFIG or ./mta.config.yaml)
  -h, --help             this text
      --version          Petrel's version and the Node.js running it

exit status: 0 done, 1 the answer is no (no such message, reload refused), 64 usage error,
78 config error; start-up failures: docs/operations.md#exit-status
`;

/** The core's commands and the options; `petrel --help` adds the commands of plugins between them. */
export const CORE_USAGE = `${CORE_COMMANDS}\n${OPTIONS}`;

const INDENT = '                         ';

/**
 * `petrel --help`: the core's commands, then every plugin command the CLI
 * can run, grouped under the plugin it comes from, and what could not be
 * looked at.
 */
export async function helpText(configFile: string, reserved: ReadonlySet<string>): Promise<string> {
  const { commands, problems } = await discoverPluginCommands(configFile, reserved);
  const lines = [CORE_COMMANDS, `commands of plugins (the built-in plugins, and the plugins ${configFile} names):`];
  const byPlugin = new Map<string, OfferedCommand[]>();
  for (const offered of commands) byPlugin.set(offered.plugin, [...(byPlugin.get(offered.plugin) ?? []), offered]);
  for (const [plugin, offered] of byPlugin) {
    lines.push(`  ${plugin}${offered[0].enabled ? '' : ` (not enabled in ${configFile})`}`);
    for (const { command } of offered) lines.push(`    ${command.name} ${command.usage}`, `${INDENT}${command.description}`);
  }
  if (byPlugin.size === 0) lines.push('  (none)');
  lines.push('', OPTIONS);
  for (const problem of problems) lines.push(`note: ${problem}`);
  return `${lines.join('\n')}\n`;
}
