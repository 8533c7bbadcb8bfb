import type { CheckEntry, HistoryRecord } from '../../../history/history-record.js';
import { time } from '../api.js';
import { Link } from './link.js';

function Check(props: { check: CheckEntry }) {
  const { check } = props;
  if ('note' in check) {
    return (
      <li class="note">
        <span class="plugin">{check.plugin}</span> {check.note}
      </li>
    );
  }
  return (
    <li>
      <span class={`verdict ${check.result}`}>{check.result}</span> <span class="hook">{check.hook}</span> <span class="plugin">{check.plugin}</span>{' '}
      <span class="ms">{check.ms} ms</span> {check.reply && <code>{check.reply}</code>}
    </li>
  );
}

/** A message's history, oldest first: how it came in, each delivery attempt, what the queue recorded, operators' actions. */
export function Timeline(props: { records: readonly HistoryRecord[] }) {
  if (props.records.length === 0) return <p class="empty">No history kept for this message.</p>;
  return (
    <ol class="timeline">
      {props.records.map((record) => (
        <li class={`event ${record.t}`} data-kind={record.t}>
          <time>{time(record.at)}</time>
          {record.t === 'received' && (
            <div>
              <h3>
                Received {record.size} bytes from &lt;{record.from}&gt;
              </h3>
              {record.session && (
                <p>
                  client {record.session.client}
                  {record.session.hostname ? ` (${record.session.hostname})` : ''}, helo {record.session.helo ?? '—'}, listener {record.session.listener},{' '}
                  {record.session.tls ?? 'no TLS'}
                  {record.session.user ? `, user ${record.session.user}` : ''}
                </p>
              )}
              <ul class="checks">
                {record.checks.map((check) => (
                  <Check check={check} />
                ))}
              </ul>
              <code>{record.reply}</code>
            </div>
          )}
          {record.t === 'refused' && (
            <div>
              <h3>
                Refused at {record.stage.toUpperCase()}: <code>{record.reply}</code> {record.plugin && `(${record.plugin})`}
              </h3>
              <ul class="checks">
                {record.checks.map((check) => (
                  <Check check={check} />
                ))}
              </ul>
            </div>
          )}
          {record.t === 'attempt' && (
            <div>
              <h3>
                Delivery attempt {record.attempt}: {record.target} → {record.destination} <span class="ms">({record.ms} ms)</span>
              </h3>
              <ul class="checks">
                {record.connections.map((c) => (
                  <li>
                    {c.reused ? 'reused connection to' : 'connected to'} {c.host}
                    {c.ip && !c.host.includes(c.ip) ? ` [${c.ip}]` : ''}, TLS {c.tls}
                  </li>
                ))}
                {record.notes.map((n) => (
                  <li class="note">
                    <span class="plugin">{n.plugin}</span> {n.note}
                  </li>
                ))}
                {record.results.map((r) => (
                  <li>
                    <span class={`verdict ${r.status}`}>{r.status}</span> {r.address} {r.reply && <code>{r.reply}</code>}
                  </li>
                ))}
              </ul>
            </div>
          )}
          {record.t === 'settled' && (
            <div>
              <h3>
                {record.done ? 'Done: the message left the queue' : record.nextAttemptAt ? `Next attempt ${time(record.nextAttemptAt)}` : 'Recorded'}
                {record.expired ? ' (expired)' : ''}
              </h3>
              {record.dsn && (
                <p>
                  Delivery status notification to the sender: <Link href={`/messages/${record.dsn}`}>{record.dsn}</Link>
                </p>
              )}
            </div>
          )}
          {record.t === 'operator' && (
            <div>
              <h3>Operator: {record.op}</h3>
            </div>
          )}
          {record.truncated && <p class="empty">This record was shortened: it had very long values or lists.</p>}
        </li>
      ))}
    </ol>
  );
}
