import type { ChartConfiguration } from 'chart.js';
import { useState } from 'preact/hooks';
import { api, type Overview } from '../api.js';
import { ChartView } from '../components/chart.js';
import { usePolling } from '../router.js';

const COLOURS = { received: '#2563eb', delivered: '#16a34a', deferred: '#d97706', bounced: '#dc2626', refused: '#6b7280', held: '#7c3aed' };

/** Messages in and out per minute, the queue by state and destination, the commonest deferral reasons. */
export function OverviewPage() {
  const [overview, setOverview] = useState<Overview | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  usePolling(() => void api.overview().then(setOverview, (error: Error) => setProblem(error.message)), 10_000, []);
  if (problem) return <p class="problem">{problem}</p>;
  if (!overview) return <p>Loading…</p>;
  const labels = overview.minutes.map((m) => new Date(m.minute).toISOString().slice(11, 16));
  const series = (['received', 'delivered', 'deferred', 'bounced', 'refused'] as const).map((key) => ({
    label: key,
    data: overview.minutes.map((m) => m[key]),
    borderColor: COLOURS[key],
    backgroundColor: COLOURS[key],
    pointRadius: 0,
    borderWidth: 2,
  }));
  const traffic: ChartConfiguration = {
    type: 'line',
    data: { labels, datasets: series },
    options: { maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { position: 'bottom' } } },
  };
  const { states, destinations } = overview.queue;
  const byState: ChartConfiguration = {
    type: 'bar',
    data: {
      labels: ['active', 'deferred', 'held'],
      datasets: [{ label: 'messages', data: [states.active, states.deferred, states.held], backgroundColor: [COLOURS.received, COLOURS.deferred, COLOURS.held] }],
    },
    options: { maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  };
  const top = destinations.slice(0, 10);
  const byDestination: ChartConfiguration = {
    type: 'bar',
    data: { labels: top.map((d) => d.destination), datasets: [{ label: 'recipients waiting', data: top.map((d) => d.recipients), backgroundColor: COLOURS.deferred }] },
    options: { indexAxis: 'y', maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  };
  const total = overview.minutes.reduce((sum, m) => ({ in: sum.in + m.received, out: sum.out + m.delivered }), { in: 0, out: 0 });
  return (
    <div class="overview">
      <section class="card wide">
        <h2>Messages per minute, last hour</h2>
        <p class="summary">
          <strong>{total.in}</strong> received, <strong>{total.out}</strong> delivered
        </p>
        <ChartView config={traffic} label="messages received, delivered, deferred, bounced and refused per minute" />
      </section>
      <section class="card">
        <h2>Queue by state</h2>
        <ChartView config={byState} label="queued messages by state" />
      </section>
      <section class="card">
        <h2>Queue by destination</h2>
        {top.length === 0 ? <p class="empty">Nothing waiting.</p> : <ChartView config={byDestination} label="recipients waiting per destination" />}
      </section>
      <section class="card wide">
        <h2>Top deferral reasons, last hour</h2>
        {overview.deferrals.length === 0 ? (
          <p class="empty">No deferrals.</p>
        ) : (
          <table class="reasons">
            <tbody>
              {overview.deferrals.map((d) => (
                <tr>
                  <td class="count">{d.count}</td>
                  <td>
                    <code>{d.reason}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
