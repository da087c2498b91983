import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Transport = 'sse' | 'ws' | 'sse_compat' | 'ws_compat';

/** One recorded outbound webhook attempt, as the metrics see it. */
export interface OutboundAttempt {
  outcome: 'delivered' | 'pending' | 'dead' | 'held';
  durationMs: number;
  /** Milliseconds since the epoch: when the delivery was planned, and when the attempt ended. */
  plannedAt: number;
  endedAt: number;
}

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
  readonly brokerFailures: Counter;
  #delivered = 0;
  readonly #connectionCounts: Record<Transport, number> = { sse: 0, ws: 0, sse_compat: 0, ws_compat: 0 };
  readonly #slowCounts: Record<Transport, number> = { sse: 0, ws: 0, sse_compat: 0, ws_compat: 0 };

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
    const slow = this.#slowCounts;
    new Counter({
      name: 'herald_slow_disconnects_total',
      help: 'Connections cut off for not reading: past their outgoing buffer bound, or a ping left unanswered with bytes still queued.',
      labelNames: ['transport'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [t, n] of Object.entries(slow)) this.inc({ transport: t }, n);
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
    this.brokerFailures = new Counter({
      name: 'herald_broker_failures_total',
      help: 'Failed broker calls (announcing committed events, or retrying while the broker is down).',
      registers: [this.registry],
    });
    this.publishLatency = new Histogram({
      name: 'herald_publish_duration_seconds',
      help: 'Time from a publish reaching the hub to its events being stored and dispatched.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry],
    });
  }

  /**
   * Outbound webhook metrics: attempts by outcome, their duration, the lag from an event being
   * planned to its delivery, and (read at scrape time from `state`) requests in flight and leased
   * deliveries waiting for a slot on this node.
   */
  trackOutbound(state: { readonly inFlight: number; readonly waiting: number }): (attempt: OutboundAttempt) => void {
    new Gauge({
      name: 'herald_webhook_requests_in_flight',
      help: 'Outbound webhook requests in flight on this node.',
      registers: [this.registry],
      collect() {
        this.set(state.inFlight);
      },
    });
    new Gauge({
      name: 'herald_webhook_deliveries_waiting',
      help: 'Leased outbound deliveries waiting in memory for a free slot on this node.',
      registers: [this.registry],
      collect() {
        this.set(state.waiting);
      },
    });
    const attempts = new Counter({
      name: 'herald_webhook_attempts_total',
      help: 'Outbound webhook attempts, by what became of the delivery: delivered, retry (pending), dead, held.',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    const duration = new Histogram({
      name: 'herald_webhook_attempt_duration_seconds',
      help: 'Duration of outbound webhook attempts (connect to the end of the answer read).',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
      registers: [this.registry],
    });
    const lag = new Histogram({
      name: 'herald_webhook_delivery_lag_seconds',
      help: 'Time from a delivery being planned (its event stored) to the answer of its successful attempt.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600],
      registers: [this.registry],
    });
    return (a) => {
      const outcome = a.outcome === 'pending' ? 'retry' : a.outcome;
      attempts.inc({ outcome });
      duration.observe(a.durationMs / 1000);
      if (a.outcome === 'delivered') lag.observe(Math.max(0, a.endedAt - a.plannedAt) / 1000);
    };
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

  slowDisconnect(t: Transport): void {
    this.#slowCounts[t]++;
  }

  slowDisconnectCount(t: Transport): number {
    return this.#slowCounts[t];
  }
}
