import { loadConfigFile } from '../../config/load.js';
import { createLogger } from '../../log/logger.js';
import { Petrel } from '../../petrel.js';
import { stateOf, type QueuedMessage, type QueueState } from '../../queue/contract.js';
import type { CliContext } from '../petrel.js';

const STATES: readonly QueueState[] = ['active', 'deferred', 'held'];

/** `petrel queue list|show|stats`: reads the configured queue (whichever plugin provides it). */
export async function queueCommand(context: CliContext): Promise<number> {
  const [action, id] = context.args;
  const loaded = await loadConfigFile(context.configFile);
  const petrel = await Petrel.build({ config: loaded, logger: createLogger({ level: 'silent' }) });
  const queue = petrel.queue;
  const json = context.flags.json === true;
  switch (action) {
    case 'list': {
      const state = context.flags.state as QueueState | undefined;
      if (state !== undefined && !STATES.includes(state)) {
        context.out(`unknown state "${state}" (one of ${STATES.join(', ')})`);
        return 2;
      }
      const messages = await queue.list({
        state,
        domain: context.flags.domain as string | undefined,
        sender: context.flags.sender as string | undefined,
      });
      if (json) context.out(JSON.stringify(messages, null, 2));
      else printTable(messages, context.out);
      return 0;
    }
    case 'show': {
      if (!id) {
        context.out('usage: petrel queue show ID');
        return 2;
      }
      const message = await queue.inspect(id);
      if (!message) {
        context.out(`no message ${id} in the queue`);
        return 1;
      }
      context.out(json ? JSON.stringify(message, null, 2) : describe(message));
      return 0;
    }
    case 'stats': {
      const stats = await queue.stats();
      context.out(json ? JSON.stringify(stats) : STATES.map((s) => `${s.padEnd(9)} ${stats[s]}`).join('\n'));
      return 0;
    }
    default:
      context.out('usage: petrel queue list|show ID|stats');
      return 2;
  }
}

function printTable(messages: readonly QueuedMessage[], out: (line: string) => void): void {
  if (messages.length === 0) {
    out('queue is empty');
    return;
  }
  out(`${'ID'.padEnd(27)} ${'STATE'.padEnd(8)} ${'SIZE'.padStart(8)} ${'RECEIVED'.padEnd(20)} SENDER -> RECIPIENTS`);
  for (const m of messages) {
    const open = m.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred').map((r) => r.address);
    out(
      `${m.id.padEnd(27)} ${stateOf(m).padEnd(8)} ${String(m.size).padStart(8)} ${new Date(m.receivedAt).toISOString().slice(0, 19).padEnd(20)} ` +
        `<${m.envelope.from}> -> ${open.join(', ')}`,
    );
  }
  out(`${messages.length} message${messages.length === 1 ? '' : 's'}`);
}

function describe(m: QueuedMessage): string {
  const lines = [
    `id:          ${m.id}`,
    `state:       ${stateOf(m)}`,
    `message-id:  ${m.messageId ?? '(none)'}`,
    `from:        <${m.envelope.from}>`,
    `size:        ${m.size} bytes`,
    `received:    ${new Date(m.receivedAt).toISOString()} from ${m.origin.remoteAddress} (${m.origin.helo ?? 'no helo'}) on ${m.origin.listener}${m.origin.user ? ` as ${m.origin.user}` : ''}`,
    `next try:    ${new Date(m.nextAttemptAt).toISOString()}`,
    `attempts:    ${m.attempts}`,
    'recipients:',
    ...m.recipients.map((r) => `  ${r.address.padEnd(40)} ${r.status.padEnd(9)} attempts ${r.attempts}${r.lastReply ? `  last: ${r.lastReply}` : ''}`),
  ];
  return lines.join('\n');
}
