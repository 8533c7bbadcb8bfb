import type { Metrics } from 'petrel';

/** The plugin's series in the server's registry (TOKENS.Metrics), shown at /metrics. */
export function rateLimitCounters(metrics: Metrics) {
  return {
    hits: metrics.counter({
      name: 'petrel_rate_limit_hits_total',
      help: 'Limits exceeded (the client was refused), by rule and what was counted',
      labelNames: ['rule', 'count'],
    }),
    storeFailures: metrics.counter({
      name: 'petrel_rate_limit_store_failures_total',
      help: 'Rate-limit decisions taken without the store (Redis unavailable), by rule and fail mode',
      labelNames: ['rule', 'fail_mode'],
    }),
  };
}
