import { Counter, Gauge, type Registry } from 'prom-client';

/** The consumer's life cycle, as `/readyz` and `herald_kafka_consumer_state` show it. */
export type KafkaSourceState = 'idle' | 'connecting' | 'consuming' | 'paused' | 'reconnecting' | 'closed';

const STATES: readonly KafkaSourceState[] = ['idle', 'connecting', 'consuming', 'paused', 'reconnecting', 'closed'];

/** The Kafka source's Prometheus metrics, on Herald's registry. */
export class KafkaMetrics {
  readonly records: Counter<'topic' | 'outcome'>;
  readonly lag: Gauge<'topic' | 'partition'>;
  readonly retries: Counter<'operation'>;
  readonly commitErrors: Counter;
  #state: KafkaSourceState = 'idle';

  constructor(registry: Registry) {
    const self = this;
    this.records = new Counter({
      name: 'herald_kafka_records_total',
      help: 'Kafka records consumed, by topic and outcome (stored, duplicate of a replay, rejected).',
      labelNames: ['topic', 'outcome'],
      registers: [registry],
    });
    this.lag = new Gauge({
      name: 'herald_kafka_consumer_lag',
      help: 'Records in each assigned partition not yet in the log (end offset minus position).',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.retries = new Counter({
      name: 'herald_kafka_retries_total',
      help: 'Batches retried because the log (append) or the dead-letter topic (dead_letter) failed.',
      labelNames: ['operation'],
      registers: [registry],
    });
    this.commitErrors = new Counter({
      name: 'herald_kafka_commit_errors_total',
      help: 'Offset commits Kafka refused (retried with the next batch; the log skips replays).',
      registers: [registry],
    });
    new Gauge({
      name: 'herald_kafka_consumer_state',
      help: 'The Kafka consumer state: 1 for the current one.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        for (const s of STATES) this.set({ state: s }, s === self.#state ? 1 : 0);
      },
    });
  }

  set state(s: KafkaSourceState) {
    this.#state = s;
  }
}
