import { loadConfigFile } from '../../config/load.js';
import type { TraceEvent } from '../../trace/trace-event.js';
import { traceText } from '../../trace/trace-text.js';
import type { CliContext } from '../petrel.js';

export const TRACE_USAGE = `usage: petrel trace server [--source CIDR ...] [--listener NAME] [--sender ADDR] [--rcpt ADDR] [--only-one] [--terse]
       petrel trace client [--domain D] [--mx HOST] [--queue-id ID] [--terse]
       (both take --admin URL when the admin listener is not the config's; the token is admin.token or $PETREL_ADMIN_TOKEN)`;

/**
 * `petrel trace server|client`: every line of inbound or outbound SMTP
 * sessions as it happens, with the hook verdicts between them, from the
 * running server's admin listener (a server-sent event stream). Runs until
 * interrupted, or until the one session `--only-one` waited for has ended.
 */
export async function traceCommand(context: CliContext): Promise<number> {
  const [side] = context.args;
  if (side !== 'server' && side !== 'client') return context.usage(side === undefined ? 'trace what? server or client' : `no trace "${side}": server or client`, TRACE_USAGE);
  const { flags } = context;
  const query = new URLSearchParams();
  const add = (name: string, value: unknown) => {
    for (const item of Array.isArray(value) ? value : [value]) if (typeof item === 'string' && item !== '') query.append(name, item);
  };
  if (side === 'server') {
    add('source', flags.source);
    add('listener', flags.listener);
    add('sender', flags.sender);
    add('rcpt', flags.rcpt);
    if (flags['only-one'] === true) query.set('onlyOne', '1');
  } else {
    add('domain', flags.domain);
    add('mx', flags.mx);
    add('queueId', flags['queue-id']);
  }
  const { url, token } = await adminEndpoint(context);
  if (!token) {
    context.err('no admin token: set admin.token in the config (or $PETREL_ADMIN_TOKEN)');
    return 1;
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  let response: Response;
  try {
    response = await fetch(`${url}/api/trace/${side}?${query}`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  } catch (error) {
    context.err(`cannot reach the admin listener at ${url}: ${(error as Error).message}`);
    return 1;
  }
  if (!response.ok || !response.body) {
    context.err(`the admin listener refused the trace (${response.status}): ${(await response.text()).trim()}`);
    return 1;
  }
  const terse = flags.terse === true;
  try {
    for await (const event of serverSentEvents(response.body)) {
      const text = traceText(event, { terse });
      if (text !== undefined) context.out(text);
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  }
  return 0;
}

/** The admin listener to ask: --admin, else the config's `admin:` host and port. */
async function adminEndpoint(context: CliContext): Promise<{ url: string; token: string | undefined }> {
  const envToken = process.env.PETREL_ADMIN_TOKEN || undefined;
  const given = typeof context.flags.admin === 'string' ? context.flags.admin.replace(/\/+$/, '') : undefined;
  if (given !== undefined) {
    const token = envToken ?? (await loadConfigFile(context.configFile).then((l) => l.config.admin?.token).catch(() => undefined));
    return { url: given, token };
  }
  const { config } = await loadConfigFile(context.configFile);
  if (!config.admin) throw new Error(`${context.configFile} has no admin listener (admin:), which traces are served by`);
  const host = config.admin.host.includes(':') ? `[${config.admin.host}]` : config.admin.host;
  return { url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${config.admin.port}`, token: config.admin.token ?? envToken };
}

/** The JSON events of a server-sent event stream. */
async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<TraceEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      if (data !== '') yield JSON.parse(data) as TraceEvent;
    }
  }
}
