import { DEFAULT_DESTINATION_LABELS, DestinationLabels } from './destination-labels.js';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';

/** One worker's registry as getMetricsAsJSON() gives it. */
export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** The reply classes counted, so dashboards can plot 2xx/4xx/5xx per hook. */
export type ReplyClass = '2xx' | '4xx' | '5xx';

export function replyClass(code: number): ReplyClass {
  return code >= 500 ? '5xx' : code >= 400 ? '4xx' : '2xx';
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DELIVERY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400];

/**
 * Petrel's Prometheus metrics: one registry per server (so tests can run
 * several in a process), the core's own series, and a way for plugins to
 * register theirs (TOKENS.Metrics). Served at /metrics on the admin listener.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly connections = this.counter({ name: 'petrel_connections_total', help: 'SMTP connections accepted', labelNames: ['listener'] });
  readonly connectionsOpen = this.gauge({ name: 'petrel_connections_open', help: 'SMTP connections open now', labelNames: ['listener'] });
  readonly replies = this.counter({
    name: 'petrel_smtp_replies_total',
    help: 'Refusals and acceptances by hook, reply class and the plugin that decided ("core" for the core, "default" when nobody did)',
    labelNames: ['hook', 'class', 'plugin'],
  });
  readonly messages = this.counter({
    name: 'petrel_messages_total',
    help: 'Messages at the end of DATA by result (accepted, rejected, deferred)',
    labelNames: ['listener', 'result'],
  });
  readonly bytes = this.counter({ name: 'petrel_message_bytes_total', help: 'Bytes of accepted messages', labelNames: ['listener'] });
  readonly hookDuration = this.histogram({
    name: 'petrel_hook_duration_seconds',
    help: 'Time a plugin handler took, per hook and plugin',
    labelNames: ['hook', 'plugin'],
    buckets: LATENCY_BUCKETS,
  });
  readonly hookFailures = this.counter({
    name: 'petrel_hook_failures_total',
    help: 'Handlers that threw or timed out (the client got 451 4.3.0)',
    labelNames: ['hook', 'plugin'],
  });
  readonly deliveryAttempts = this.counter({
    name: 'petrel_delivery_attempts_total',
    help: 'Per-recipient delivery outcomes by destination domain (the busiest admin.metricsDestinations of them; the rest as "other")',
    labelNames: ['destination', 'outcome'],
  });
  readonly deliveryLatency = this.histogram({
    name: 'petrel_delivery_latency_seconds',
    help: 'Time from acceptance to delivery, per recipient, by destination as in petrel_delivery_attempts_total',
    labelNames: ['destination'],
    buckets: DELIVERY_BUCKETS,
  });
  readonly redisErrors = this.counter({ name: 'petrel_redis_errors_total', help: 'Errors reported by the Redis connection' });
  readonly queueDepth = this.gauge({ name: 'petrel_queue_messages', help: 'Messages in the queue by state', labelNames: ['state'] });

  /** The `destination` label of the delivery metrics, capped (see DestinationLabels). */
  readonly destinations: DestinationLabels;

  constructor(options: { defaultMetrics?: boolean; destinationLabels?: number } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'petrel_' });
    this.destinations = new DestinationLabels(options.destinationLabels ?? DEFAULT_DESTINATION_LABELS);
  }

  /** Registers (or returns the already registered) counter. Plugins: prefix names with `petrel_<plugin>_`. */
  counter<L extends string>(config: Omit<CounterConfiguration<L>, 'registers'>): Counter<L> {
    return (this.registry.getSingleMetric(config.name) as Counter<L> | undefined) ?? new Counter({ ...config, registers: [this.registry] });
  }

  gauge<L extends string>(config: Omit<GaugeConfiguration<L>, 'registers'>): Gauge<L> {
    return (this.registry.getSingleMetric(config.name) as Gauge<L> | undefined) ?? new Gauge({ ...config, registers: [this.registry] });
  }

  histogram<L extends string>(config: Omit<HistogramConfiguration<L>, 'registers'>): Histogram<L> {
    return (this.registry.getSingleMetric(config.name) as Histogram<L> | undefined) ?? new Histogram({ ...config, registers: [this.registry] });
  }

  /** With several workers: where every worker's registry is read from, for an exposition of the whole server. */
  #gatherAll: (() => Promise<WorkerMetrics[]>) | undefined;

  /**
   * Makes exposition() add up the registries of all workers (server.workers):
   * counters and histograms are summed, as prom-client's AggregatorRegistry
   * does for node:cluster, so /metrics counts the whole server.
   */
  aggregateWorkers(gatherAll: () => Promise<WorkerMetrics[]>): void {
    this.#gatherAll = gatherAll;
  }

  /** The text exposition format, for GET /metrics. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    if (!this.#gatherAll) return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    const aggregate = AggregatorRegistry.aggregate(await this.#gatherAll());
    return { contentType: aggregate.contentType, body: await aggregate.metrics() };
  }
}
