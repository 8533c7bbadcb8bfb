import { useState } from 'preact/hooks';
import { api, stateOf, time, type BulkAction, type ShownMessage } from '../api.js';
import { Timeline } from '../components/timeline.js';
import { navigate, usePolling } from '../router.js';

/** One message: its envelope and recipients, actions, its history as a timeline, its headers, the raw message on demand. */
export function MessagePage(props: { id: string }) {
  const [shown, setShown] = useState<ShownMessage | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  const [raw, setRaw] = useState<string | undefined>();
  const [tick, setTick] = useState(0);
  usePolling(() => void api.message(props.id).then(setShown, (error: Error) => setProblem(error.message)), 5_000, [props.id, tick]);

  const act = async (action: BulkAction) => {
    if ((action === 'bounce' || action === 'delete') && !confirm(`${action} ${props.id}?`)) return;
    await api.act(action, props.id);
    if (action === 'delete') navigate('/queue');
    else setTick(tick + 1);
  };
  if (problem) return <p class="problem">{problem}</p>;
  if (!shown) return <p>Loading…</p>;
  const m = shown.message;
  return (
    <section class="message">
      <h1>
        {props.id} {m ? <span class={`state ${stateOf(m)}`}>{stateOf(m)}</span> : <span class="state gone">no longer queued</span>}
      </h1>
      {m && (
        <>
          <dl class="facts">
            <dt>From</dt>
            <dd>&lt;{m.envelope.from}&gt;</dd>
            <dt>Message-ID</dt>
            <dd>{m.messageId ?? '—'}</dd>
            <dt>Received</dt>
            <dd>
              {time(m.receivedAt)} from {m.origin.remoteAddress} on {m.origin.listener}
              {m.origin.user ? ` as ${m.origin.user}` : ''}
            </dd>
            <dt>Size</dt>
            <dd>{m.size} bytes</dd>
            <dt>Next attempt</dt>
            <dd>{m.held ? 'held' : time(m.nextAttemptAt)}</dd>
          </dl>
          <div class="actions">
            {m.held ? <button onClick={() => void act('release')}>Release</button> : <button onClick={() => void act('hold')}>Hold</button>}
            <button onClick={() => void act('retry')}>Retry now</button>
            <button onClick={() => void act('bounce')}>Bounce</button>
            <button onClick={() => void act('delete')}>Delete</button>
          </div>
          <table class="recipients">
            <thead>
              <tr>
                <th>Recipient</th>
                <th>Status</th>
                <th>Tries</th>
                <th>Last reply</th>
              </tr>
            </thead>
            <tbody>
              {m.recipients.map((r) => (
                <tr>
                  <td>{r.address}</td>
                  <td>
                    <span class={`verdict ${r.status}`}>{r.status}</span>
                  </td>
                  <td class="count">{r.attempts}</td>
                  <td class="reply">{r.lastReply ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <h2>History</h2>
      <Timeline records={shown.history} />
      {m && (
        <>
          <h2>Headers</h2>
          <pre class="headers">{shown.headers}</pre>
          {raw === undefined ? (
            <button onClick={() => void api.raw(props.id).then(setRaw, (error: Error) => setProblem(error.message))}>Show the raw message</button>
          ) : (
            <pre class="raw">{raw}</pre>
          )}
        </>
      )}
    </section>
  );
}
