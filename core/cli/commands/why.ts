import { parseDuration } from '../../config/units.js';
import type { MessageHistory } from '../../history/history-store.js';
import { messageHistoryText } from '../../history/timeline.js';
import type { CliContext } from '../petrel.js';
import { runQueueRequest } from './queue.js';

export const WHY_USAGE = 'usage: petrel why QUERY [--since 2d] [--limit N] [--json]   (QUERY: a queue id, Message-ID, sender or recipient)';

/**
 * `petrel why QUERY`: what happened to the messages a queue id, Message-ID,
 * sender or recipient names, over the retained history, refused
 * transactions included, each as a timeline. Asks the running server (its
 * history has what is not written yet), else reads dataDir/history itself.
 */
export async function whyCommand(context: CliContext): Promise<number> {
  const query = context.args.join(' ').trim();
  if (query === '') return context.usage('which message? give a queue id, Message-ID, sender or recipient', WHY_USAGE);
  const { flags } = context;
  let since: number | undefined;
  if (typeof flags.since === 'string') {
    const ms = parseDuration(flags.since);
    if (ms === undefined) return context.usage(`--since wants a duration like 2h or 3d, not "${flags.since}"`, WHY_USAGE);
    since = Date.now() - ms;
  }
  const limit = typeof flags.limit === 'string' ? Number(flags.limit) : 20;
  if (!Number.isInteger(limit) || limit < 1) return context.usage(`--limit wants a positive number, not "${String(flags.limit)}"`, WHY_USAGE);
  const found = (await runQueueRequest(context.configFile, { op: 'why', query, since, limit })) as MessageHistory[];
  if (flags.json === true) {
    context.out(JSON.stringify(found, null, 2));
    return found.length > 0 ? 0 : 1;
  }
  if (found.length === 0) {
    context.err(`nothing in the history matches "${query}" (history.retention limits how far back it goes)`);
    return 1;
  }
  context.out(found.map(messageHistoryText).join('\n\n'));
  return 0;
}
