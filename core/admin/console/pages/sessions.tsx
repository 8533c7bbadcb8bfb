import { useEffect, useState } from 'preact/hooks';
import type { TraceEvent, VerdictResult } from '../../../trace/trace-event.js';

/** Connections kept on screen per side; older closed ones go first. */
const KEEP = 100;

interface Row {
  readonly conn: string;
  readonly started: number;
  remote: string;
  where: string;
  helo?: string;
  sender?: string;
  recipients: string[];
  verdicts: { hook: string; plugin: string; result: VerdictResult; reply?: string; ms: number }[];
  lastReply?: string;
  qid?: string;
  closed: boolean;
}

const MAIL = /^MAIL FROM:\s*<([^>]*)>/i;
const RCPT = /^RCPT TO:\s*<([^>]*)>/i;
const HELO = /^(?:EHLO|HELO|LHLO)\s+(\S+)/i;

/** Folds one trace event into the rows (a new row at `open`, facts from the lines, a chip per verdict). */
function apply(rows: Map<string, Row>, event: TraceEvent): number {
  if (event.kind === 'lost') return event.count;
  let row = rows.get(event.conn);
  if (!row) {
    row = { conn: event.conn, started: event.at, remote: '', where: '', recipients: [], verdicts: [], closed: false };
    rows.set(event.conn, row);
  }
  if (event.qid) row.qid = event.qid;
  switch (event.kind) {
    case 'open':
      row.remote = event.remote;
      row.where = event.side === 'server' ? (event.listener ?? '') : `${event.host ?? ''}${event.domain ? ` (${event.domain})` : ''}`;
      break;
    case 'line': {
      const command = (event.side === 'server') === (event.dir === 'in');
      if (command) {
        const helo = HELO.exec(event.text);
        const mail = MAIL.exec(event.text);
        const rcpt = RCPT.exec(event.text);
        if (helo) row.helo = helo[1];
        if (mail) {
          row.sender = mail[1];
          row.recipients = [];
        }
        if (rcpt) row.recipients.push(rcpt[1]);
      } else {
        row.lastReply = event.text.split('\n').at(-1);
      }
      break;
    }
    case 'verdict':
      row.verdicts.push({ hook: event.hook, plugin: event.plugin, result: event.result, reply: event.reply, ms: event.ms });
      break;
    case 'close':
      row.closed = true;
      break;
  }
  if (rows.size > KEEP) {
    for (const [conn, old] of rows) {
      if (rows.size <= KEEP) break;
      if (old.closed) rows.delete(conn);
    }
  }
  return 0;
}

/** Follows one side's live trace over server-sent events; the rows re-render at most a few times a second. */
function useTrace(side: 'server' | 'client'): { rows: Row[]; lost: number; connected: boolean } {
  const [state, setState] = useState<{ rows: Row[]; lost: number; connected: boolean }>({ rows: [], lost: 0, connected: false });
  useEffect(() => {
    const rows = new Map<string, Row>();
    let lost = 0;
    let connected = false;
    let dirty = true;
    const source = new EventSource(`/api/trace/${side}`);
    source.onopen = () => {
      connected = true;
      dirty = true;
    };
    source.onerror = () => {
      connected = false;
      dirty = true;
    };
    source.onmessage = (message) => {
      lost += apply(rows, JSON.parse(message.data as string) as TraceEvent);
      dirty = true;
    };
    const timer = setInterval(() => {
      if (!dirty) return;
      dirty = false;
      setState({ rows: [...rows.values()].reverse().map((row) => ({ ...row, verdicts: [...row.verdicts], recipients: [...row.recipients] })), lost, connected });
    }, 250);
    return () => {
      clearInterval(timer);
      source.close();
    };
  }, [side]);
  return state;
}

function Rows(props: { rows: Row[]; side: 'server' | 'client' }) {
  if (props.rows.length === 0) return <p class="empty">No {props.side === 'server' ? 'inbound' : 'outbound'} connections since this page opened.</p>;
  return (
    <table class="sessions">
      <thead>
        <tr>
          <th>Time</th>
          <th>{props.side === 'server' ? 'Client' : 'Server'}</th>
          <th>{props.side === 'server' ? 'Listener / HELO' : 'Host'}</th>
          <th>Envelope</th>
          <th>Plugins</th>
          <th>Last reply</th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((row) => (
          <tr key={row.conn} class={row.closed ? 'closed' : 'open'} data-conn={row.conn}>
            <td>{new Date(row.started).toISOString().slice(11, 19)}</td>
            <td>{row.remote}</td>
            <td>
              {row.where}
              {props.side === 'server' && row.helo ? ` / ${row.helo}` : ''}
            </td>
            <td>
              {row.sender !== undefined && <>&lt;{row.sender}&gt; → </>}
              {row.recipients.join(', ')}
              {row.qid && <div class="qid">{row.qid}</div>}
            </td>
            <td>
              <div class="chips">
                {row.verdicts.map((v) => (
                  <span class={`chip ${v.result}`} title={`${v.hook}: ${v.result}${v.reply ? ` ${v.reply}` : ''} (${v.ms} ms)`}>
                    <small>{v.hook}</small> {v.plugin}
                  </span>
                ))}
              </div>
            </td>
            <td class="reply">{row.lastReply}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Haraka-watch style: one row a connection, each plugin's verdict as a coloured chip, live. */
export function SessionsPage() {
  const inbound = useTrace('server');
  const outbound = useTrace('client');
  return (
    <section class="live">
      <p class="legend">
        <span class="chip accept">accept</span> <span class="chip next">no opinion</span> <span class="chip defer">defer</span>{' '}
        <span class="chip reject">reject</span> <span class="chip disconnect">disconnect</span> <span class="chip error">failed</span>
        <span class={`link-state ${inbound.connected ? 'up' : 'down'}`}>{inbound.connected ? 'live' : 'connecting…'}</span>
      </p>
      <h2>Inbound</h2>
      {inbound.lost > 0 && <p class="problem">{inbound.lost} events were lost: this page fell behind.</p>}
      <Rows rows={inbound.rows} side="server" />
      <h2>Outbound</h2>
      {outbound.lost > 0 && <p class="problem">{outbound.lost} events were lost: this page fell behind.</p>}
      <Rows rows={outbound.rows} side="client" />
    </section>
  );
}
