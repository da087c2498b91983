import { ListOffsetTimestamps, type Consumer } from '@platformatic/kafka';
import type { KafkaMetrics } from './kafka-metrics.js';

export interface KafkaLagOptions {
  consumer: Consumer<Buffer, Buffer, Buffer, Buffer>;
  metrics: KafkaMetrics;
  topics: readonly string[];
  intervalMs: number;
  /** The next offset this member will store for a partition, when it has stored any. */
  position: (topic: string, partition: number) => bigint | undefined;
  /** Whether a topic is read from its start when the group has no offset for it. */
  fromBeginning: (topic: string) => boolean;
}

/**
 * Measures consumer lag per assigned partition every `intervalMs`: the partition's end offset
 * minus this member's position (what it stored, else what the group committed, else where the
 * group starts: the log start with `fromBeginning`, the end without). Partitions that move to
 * another member lose their series here (that member reports them).
 */
export class KafkaLag {
  readonly #opts: KafkaLagOptions;
  readonly #timer: NodeJS.Timeout;
  #labels = new Set<string>();
  #busy = false;
  #closed = false;

  constructor(opts: KafkaLagOptions) {
    this.#opts = opts;
    this.#timer = setInterval(() => void this.measure(), opts.intervalMs);
    this.#timer.unref();
  }

  /** One measurement; errors are skipped (the next tick tries again). */
  async measure(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    try {
      const { consumer, topics, position, metrics, fromBeginning } = this.#opts;
      const assigned = (consumer.assignments ?? []).filter((a) => topics.includes(a.topic) && a.partitions.length > 0);
      const ends = assigned.length > 0 ? await consumer.listOffsets({ topics: assigned.map((a) => a.topic) }) : new Map();
      const unknown = assigned
        .map((a) => ({ topic: a.topic, partitions: a.partitions.filter((p) => position(a.topic, p) === undefined) }))
        .filter((a) => a.partitions.length > 0);
      const committed = unknown.length > 0 ? await consumer.listCommittedOffsets({ topics: unknown }) : new Map();
      const fromStart = unknown.filter((a) => fromBeginning(a.topic)).map((a) => a.topic);
      const starts =
        fromStart.length > 0
          ? await consumer.listOffsets({ topics: fromStart, timestamp: ListOffsetTimestamps.EARLIEST })
          : new Map();
      if (this.#closed) return;
      const seen = new Set<string>();
      for (const a of assigned) {
        const endOffsets = ends.get(a.topic) as bigint[] | undefined;
        for (const p of a.partitions) {
          const end = endOffsets?.[p];
          let pos = position(a.topic, p);
          if (pos === undefined) {
            const c = (committed.get(a.topic) as bigint[] | undefined)?.[p];
            if (c !== undefined && c >= 0n) pos = c;
            else pos = fromBeginning(a.topic) ? (starts.get(a.topic) as bigint[] | undefined)?.[p] : end;
          }
          if (end === undefined || pos === undefined) continue;
          const labels = { topic: a.topic, partition: String(p) };
          metrics.lag.set(labels, Number(end > pos ? end - pos : 0n));
          seen.add(`${a.topic}\u0000${p}`);
        }
      }
      for (const key of this.#labels) {
        if (seen.has(key)) continue;
        const [topic, partition] = key.split('\u0000') as [string, string];
        metrics.lag.remove({ topic, partition });
      }
      this.#labels = seen;
    } catch {
      /* the broker is away or the group is rebalancing: measured again next tick */
    } finally {
      this.#busy = false;
    }
  }

  /** Stops measuring and drops this member's series. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const key of this.#labels) {
      const [topic, partition] = key.split('\u0000') as [string, string];
      this.#opts.metrics.lag.remove({ topic, partition });
    }
    this.#labels.clear();
  }
}
