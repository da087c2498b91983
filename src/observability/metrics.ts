import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Transport = 'sse' | 'ws' | 'sse_compat' | 'ws_compat';

/**
 * Prometheus metrics, on a registry of their own (no import-time globals). Counters touched once
 * per delivery are plain numbers read at scrape time, so the fan-out loop never calls into
 * prom-client.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections: Gauge<'transport'>;
  readonly published: Counter;
  readonly publishLatency: Histogram;
  #delivered = 0;
  readonly #connectionCounts: Record<Transport, number> = { sse: 0, ws: 0, sse_compat: 0, ws_compat: 0 };

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'herald_process_' });
    const counts = this.#connectionCounts;
    this.connections = new Gauge({
      name: 'herald_connections',
      help: 'Open subscriber connections, by transport.',
      labelNames: ['transport'],
      registers: [this.registry],
      collect() {
        for (const [t, n] of Object.entries(counts)) this.set({ transport: t }, n);
      },
    });
    this.published = new Counter({
      name: 'herald_events_published_total',
      help: 'Events appended to the log (duplicates by idempotency key not counted).',
      registers: [this.registry],
    });
    const self = this;
    new Counter({
      name: 'herald_events_delivered_total',
      help: 'Events written to subscriber connections (one per event per subscriber).',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(self.#delivered);
      },
    });
    this.publishLatency = new Histogram({
      name: 'herald_publish_duration_seconds',
      help: 'Time from a publish reaching the hub to its events being stored and dispatched.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry],
    });
  }

  delivered(n: number): void {
    this.#delivered += n;
  }

  connectionOpened(t: Transport): void {
    this.#connectionCounts[t]++;
  }

  connectionClosed(t: Transport): void {
    this.#connectionCounts[t]--;
  }

  connectionCount(t: Transport): number {
    return this.#connectionCounts[t];
  }
}
