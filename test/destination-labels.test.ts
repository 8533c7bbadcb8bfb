import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DestinationLabels, OTHER_DESTINATION } from '../core/metrics/destination-labels.js';
import { Metrics } from '../core/metrics/metrics.js';

/** Every distinct destination label in the exposition of petrel_delivery_attempts_total. */
async function destinationSeries(metrics: Metrics): Promise<Set<string>> {
  const { body } = await metrics.exposition();
  return new Set([...body.matchAll(/^petrel_delivery_attempts_total\{destination="([^"]*)"/gm)].map((match) => match[1]));
}

describe('destination labels of the delivery metrics', () => {
  it('gives the busiest destinations a label of their own, at most the limit, and the rest "other"', () => {
    const labels = new DestinationLabels(2);
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 50; round++) {
      for (const destination of ['big.test', 'bigger.test', 'third.test']) {
        const label = labels.label(destination);
        seen.set(destination, (seen.get(destination) ?? new Set()).add(label));
      }
    }
    assert.equal(labels.label('big.test'), 'big.test');
    assert.equal(labels.label('bigger.test'), 'bigger.test');
    assert.equal(labels.label('third.test'), OTHER_DESTINATION, 'the limit is reached');
    assert.deepEqual([...(seen.get('third.test') ?? [])], [OTHER_DESTINATION]);
  });

  it('keeps one-off destinations out, and does not let many of them keep a busy one out', () => {
    const labels = new DestinationLabels(5);
    for (let i = 0; i < 20_000; i++) {
      assert.equal(labels.label(`once-${i}.test`), OTHER_DESTINATION);
      if (i % 20 === 0) labels.label('busy.test');
    }
    assert.equal(labels.label('busy.test'), 'busy.test', '1,000 deliveries among 20,000 one-offs (5%) earn a label');
  });

  it('a limit of 0 labels everything "other"', () => {
    const labels = new DestinationLabels(0);
    for (let i = 0; i < 100; i++) assert.equal(labels.label('example.org'), OTHER_DESTINATION);
  });

  it('bounds the series Prometheus sees however many domains mail goes to', async () => {
    const metrics = new Metrics({ defaultMetrics: false, destinationLabels: 3 });
    for (let i = 0; i < 5_000; i++) {
      const domain = i % 2 === 0 ? `d${i % 10}.test` : `random-${i}.test`;
      metrics.deliveryAttempts.inc({ destination: metrics.destinations.label(domain), outcome: 'delivered' });
    }
    const series = await destinationSeries(metrics);
    assert.ok(series.size <= 4, `at most 3 destinations and "other": ${[...series].join(', ')}`);
    assert.ok(series.has(OTHER_DESTINATION));
  });
});
