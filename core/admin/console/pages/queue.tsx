import { useState } from 'preact/hooks';
import { api, stateOf, time, type BulkAction, type QueuedMessage } from '../api.js';
import { Link } from '../components/link.js';
import { usePolling } from '../router.js';

const ACTIONS: readonly { action: BulkAction; label: string; confirm?: string }[] = [
  { action: 'hold', label: 'Hold' },
  { action: 'release', label: 'Release' },
  { action: 'retry', label: 'Retry now' },
  { action: 'bounce', label: 'Bounce', confirm: 'Bounce the selected messages (their senders get a DSN)?' },
  { action: 'delete', label: 'Delete', confirm: 'Delete the selected messages without telling anyone?' },
];

/** The queue: filter by state and domain, search, select, act on many at once. */
export function QueuePage() {
  const [messages, setMessages] = useState<QueuedMessage[]>([]);
  const [filter, setFilter] = useState({ state: '', domain: '', q: '' });
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [status, setStatus] = useState<string | undefined>();
  const [tick, setTick] = useState(0);
  usePolling(() => void api.queue(filter).then(setMessages, (error: Error) => setStatus(error.message)), 5_000, [filter, tick]);

  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const act = async (action: BulkAction, confirmText?: string) => {
    if (selected.size === 0 || (confirmText && !confirm(confirmText))) return;
    const { results } = await api.bulk(action, [...selected]);
    const done = Object.values(results).filter((r) => r === true || r === 'bounced').length;
    setStatus(`${action}: ${done} of ${selected.size} done`);
    setSelected(new Set());
    setTick(tick + 1);
  };
  const visible = new Set(messages.map((m) => m.id));
  const allSelected = messages.length > 0 && messages.every((m) => selected.has(m.id));
  return (
    <section class="queue">
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select name="state" value={filter.state} onChange={(e) => setFilter({ ...filter, state: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="deferred">deferred</option>
            <option value="held">held</option>
          </select>
        </label>
        <label>
          Domain
          <input name="domain" value={filter.domain} onChange={(e) => setFilter({ ...filter, domain: e.currentTarget.value })} placeholder="example.org" />
        </label>
        <label class="grow">
          Search
          <input name="q" type="search" value={filter.q} onInput={(e) => setFilter({ ...filter, q: e.currentTarget.value })} placeholder="queue id, sender, recipient, Message-ID" />
        </label>
      </form>
      <div class="actions">
        <span>{selected.size} selected</span>
        {ACTIONS.map(({ action, label, confirm: text }) => (
          <button disabled={selected.size === 0} onClick={() => void act(action, text)} data-action={action}>
            {label}
          </button>
        ))}
        {status && <span class="status">{status}</span>}
      </div>
      <table class="messages">
        <thead>
          <tr>
            <th>
              <input
                type="checkbox"
                aria-label="select all"
                checked={allSelected}
                onChange={() => setSelected(allSelected ? new Set() : new Set(visible))}
              />
            </th>
            <th>Queue id</th>
            <th>State</th>
            <th>Received</th>
            <th>Tries</th>
            <th>Sender</th>
            <th>Recipients waiting</th>
            <th>Last reply</th>
          </tr>
        </thead>
        <tbody>
          {messages.length === 0 && (
            <tr>
              <td colSpan={8} class="empty">
                The queue is empty{filter.state || filter.domain || filter.q ? ' for this filter' : ''}.
              </td>
            </tr>
          )}
          {messages.map((m) => {
            const open = m.recipients.filter((r) => r.status === 'pending' || r.status === 'deferred');
            const state = stateOf(m);
            return (
              <tr key={m.id} data-id={m.id}>
                <td>
                  <input type="checkbox" aria-label={`select ${m.id}`} checked={selected.has(m.id)} onChange={() => toggle(m.id)} />
                </td>
                <td>
                  <Link href={`/messages/${m.id}`}>{m.id}</Link>
                </td>
                <td>
                  <span class={`state ${state}`}>{state}</span>
                </td>
                <td>{time(m.receivedAt)}</td>
                <td class="count">{m.attempts}</td>
                <td>{m.envelope.from || '<>'}</td>
                <td>{open.map((r) => r.address).join(', ')}</td>
                <td class="reply">{open.find((r) => r.lastReply)?.lastReply ?? ''}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
