import { Consumer, type Message, type MessagesStream } from '@platformatic/kafka';
import type { Registry } from 'prom-client';
import type { KafkaConfig } from '../config/kafka-schema.js';
import type { EventInput } from '../core/event.js';
import type { Hub } from '../core/hub.js';
import type { ReadinessCheck } from '../core/readiness.js';
import type { Logger } from '../observability/logger.js';
import { kafkaConnectionOptions } from './kafka-connection.js';
import { KafkaDeadLetter } from './kafka-dead-letter.js';
import { describeKafkaFailure } from './kafka-failure.js';
import { KafkaLag } from './kafka-lag.js';
import { KafkaMetrics, type KafkaSourceState } from './kafka-metrics.js';
import { mapRecord, rejectionInput, type KafkaRecord, type Rejection, type TopicMapping } from './kafka-record.js';
import { RecordTemplate } from '../config/kafka-template.js';

/** milliseconds: the first wait before retrying a failed append, commit target or connection. */
const RETRY_BASE_DELAY_MS = 100;
/** Failed attempts between two warnings while a retry loop goes on (the first one is logged). */
const RETRY_WARN_EVERY = 20;
/**
 * milliseconds the final commit may take when the consumer stops: with the broker away it would
 * otherwise hold the shutdown for the client's full retry schedule (a lost commit only costs a
 * replay, which the log skips).
 */
const FINAL_COMMIT_TIMEOUT_MS = 3_000;

type RawMessage = Message<Buffer, Buffer, Buffer, Buffer>;
type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/** Thrown inside the loop when `close()` interrupts a wait. */
class Stopping extends Error {}

export interface KafkaSourceOptions {
  config: KafkaConfig;
  hub: Hub;
  log: Logger;
  registry: Registry;
}

/**
 * Kafka in: one consumer group member that turns records into events.
 *
 * - **Order.** Records are read from the consumer's streams and appended in batches, one batch
 *   at a time, so each partition's records reach the log in offset order.
 * - **Exactly once into the log.** Every event carries its record's (topic, partition, offset) as
 *   `origin`; the store records it in the same transaction and skips a replay (EventStore
 *   "stream positions"). Kafka redelivers after a crash or a rebalance; the log does not grow.
 * - **Commit after store.** An offset is committed only after its batch resolved from the hub,
 *   i.e. once its events are durable. A lost commit costs a replay, never a record.
 * - **Poison records** (value not UTF-8, templates it cannot fill) become a `kafka.rejected`
 *   event at their own position (and, when configured, a copy in the dead-letter topic), so the
 *   partition moves on.
 * - **Backpressure.** While an append fails the batch is retried with backoff and nothing more
 *   is read; the client stops fetching once `bufferMaxRecords` are buffered. Memory stays
 *   bounded, and consumption resumes by itself when the log answers again.
 */
export class KafkaSource implements ReadinessCheck {
  readonly name = 'kafka';
  readonly #config: KafkaConfig;
  readonly #hub: Hub;
  readonly #log: Logger;
  readonly #metrics: KafkaMetrics;
  readonly #mappings = new Map<string, TopicMapping>();
  #state: KafkaSourceState = 'idle';
  #consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  readonly #deadLetter: KafkaDeadLetter | undefined;
  #lag: KafkaLag | undefined;
  /** Per `topic:partition`, the next offset to commit (the last stored offset + 1). */
  #positions = new Map<string, { topic: string; partition: number; offset: bigint }>();
  #committing: Promise<void> | undefined;
  #commitAgain = false;
  #running: Promise<void> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  /** Wakes whatever the loop is waiting on (a stream, a backoff) when `close()` is called. */
  readonly #stopWaiters = new Set<() => void>();

  constructor(opts: KafkaSourceOptions) {
    this.#config = opts.config;
    this.#hub = opts.hub;
    this.#log = opts.log.child({ component: 'kafka' });
    this.#metrics = new KafkaMetrics(opts.registry);
    for (const t of opts.config.topics) {
      this.#mappings.set(t.topic, {
        topic: t.topic,
        channel: new RecordTemplate(t.channel),
        type: t.type === undefined ? undefined : new RecordTemplate(t.type),
      });
    }
    if (opts.config.deadLetterTopic) this.#deadLetter = new KafkaDeadLetter(opts.config, opts.config.deadLetterTopic);
    // Fail at start, not at the first reconnect, when a certificate file is missing.
    kafkaConnectionOptions(opts.config);
  }

  get state(): KafkaSourceState {
    return this.#state;
  }

  /** Ready when a member of its group and consuming (`paused` too: it is waiting on the log). */
  get ready(): boolean {
    return this.#state === 'consuming' || this.#state === 'paused';
  }

  /** Starts consuming in the background; Kafka being down delays it, never fails it. */
  start(): void {
    if (this.#running || this.#closing) return;
    this.#running = this.#run();
  }

  /**
   * Graceful stop: finishes the batch in hand, commits what is stored, leaves the group (so its
   * partitions move to the other members at once), within `timeoutMs`. Idempotent.
   */
  close(timeoutMs = 10_000): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      for (const wake of this.#stopWaiters) wake();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([this.#running ?? Promise.resolve(), deadline]);
      clearTimeout(timer);
      // Past the deadline, or when the loop never started: close whatever is still open.
      await this.#teardown();
      this.#setState('closed');
    })();
    return this.#closed;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      this.#setState(failures === 0 ? 'connecting' : 'reconnecting');
      try {
        await this.#session();
      } catch (err) {
        if (this.#closing) break;
        failures++;
        if (failures === 1 || failures % RETRY_WARN_EVERY === 0) {
          // The message names the cause (no broker reachable at the configured address, a TLS
          // or SASL failure), not only the client's "findGroupCoordinator failed 4 times".
          const why = describeKafkaFailure(err, this.#config.brokers);
          this.#log.warn({ err, failures }, `kafka: ${why}; reconnecting`);
        }
      }
      await this.#teardown();
      if (this.#closing) break;
      await this.#sleep(this.#backoff(failures)).catch(() => undefined);
    }
  }

  /** One consumer from join to failure (or close): consume, store, commit. */
  async #session(): Promise<void> {
    const cfg = this.#config;
    const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...kafkaConnectionOptions(cfg),
      groupId: cfg.groupId,
      autocreateTopics: cfg.createTopics,
      sessionTimeout: cfg.sessionTimeoutMs,
      rebalanceTimeout: cfg.sessionTimeoutMs,
      heartbeatInterval: cfg.heartbeatIntervalMs,
      // The client's own retries are short; this loop retries forever with its backoff.
      retries: 3,
      retryDelay: RETRY_BASE_DELAY_MS * 5,
    });
    this.#consumer = consumer;
    consumer.on('consumer:group:join', (p) => {
      this.#log.info({ assignments: p.assignments, memberId: p.memberId }, 'kafka: joined the group');
    });
    // One stream per starting rule: topics read from the start when the group has no offset
    // yet, and topics read from now.
    const streams: Stream[] = [];
    for (const fromBeginning of [true, false]) {
      const topics = cfg.topics.filter((t) => t.fromBeginning === fromBeginning).map((t) => t.topic);
      if (topics.length === 0) continue;
      const stream = await consumer.consume({
        topics,
        mode: 'committed',
        fallbackMode: fromBeginning ? 'earliest' : 'latest',
        autocommit: false,
        maxBytes: cfg.fetchMaxBytes,
        maxWaitTime: cfg.fetchMaxWaitMs,
        highWaterMark: cfg.bufferMaxRecords,
        sessionTimeout: cfg.sessionTimeoutMs,
        rebalanceTimeout: cfg.sessionTimeoutMs,
        heartbeatInterval: cfg.heartbeatIntervalMs,
      });
      streams.push(stream);
      if (this.#closing) return;
    }
    this.#lag = new KafkaLag({
      consumer,
      metrics: this.#metrics,
      topics: cfg.topics.map((t) => t.topic),
      intervalMs: cfg.lagIntervalSeconds * 1000,
      position: (topic, partition) => this.#positions.get(`${topic}:${partition}`)?.offset,
      fromBeginning: (topic) => cfg.topics.some((t) => t.topic === topic && t.fromBeginning),
    });
    this.#setState('consuming');
    await this.#pump(streams);
  }

  /** Reads batches from the streams and stores them, one batch at a time, until close or failure. */
  async #pump(streams: Stream[]): Promise<void> {
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => wake?.();
    const onError = (err: Error) => {
      failure ??= err;
      notify();
    };
    const onClose = () => {
      failure ??= new Error('the Kafka stream closed');
      notify();
    };
    // A 'readable' listener stays attached for the stream's life: it keeps the stream in paused
    // mode, where the client fetches ahead (up to bufferMaxRecords) while a batch is being stored.
    for (const s of streams) s.on('readable', notify).on('error', onError).on('close', onClose);
    const max = this.#config.batchMaxRecords;
    for (;;) {
      if (this.#closing) return;
      if (failure) throw failure;
      const batch: RawMessage[] = [];
      const owned = this.#owned();
      let revoked = 0;
      for (const s of streams) {
        while (batch.length < max) {
          const m = s.read() as RawMessage | null;
          if (m === null) break;
          // Fetched before a rebalance moved its partition away: the new owner reads it from
          // the committed offset, so storing it here would only make a replay to skip.
          if (owned.has(`${m.topic}:${m.partition}`)) batch.push(m);
          else revoked++;
        }
      }
      if (revoked > 0) this.#log.debug({ revoked }, 'kafka: dropped records of revoked partitions');
      if (batch.length === 0) {
        // Every stream returned null, so each emits 'readable' when it has records again.
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.#stopWaiters.add(resolve);
        });
        this.#stopWaiters.delete(wake!);
        wake = undefined;
        continue;
      }
      try {
        await this.#store(batch);
      } catch (err) {
        if (err instanceof Stopping) return;
        throw err;
      }
      void this.#commit();
    }
  }

  /** Turns a batch into events (rejections included, at their positions) and stores it. */
  async #store(batch: readonly RawMessage[]): Promise<void> {
    const inputs: EventInput[] = [];
    const rejected: { record: KafkaRecord; why: Rejection }[] = [];
    const rejectedAt = new Set<number>();
    for (const m of batch) {
      const record: KafkaRecord = {
        topic: m.topic,
        partition: m.partition,
        offset: Number(m.offset),
        timestamp: Number(m.timestamp),
        key: m.key ?? undefined,
        value: m.value ?? undefined,
        headers: m.headers as Map<Buffer, Buffer | undefined>,
      };
      const mapped = mapRecord(this.#mappings.get(m.topic)!, record);
      if (mapped.ok) {
        inputs.push(mapped.input);
      } else {
        const why: Rejection = { code: mapped.code, reason: mapped.reason };
        rejected.push({ record, why });
        rejectedAt.add(inputs.length);
        inputs.push(rejectionInput(this.#config.rejectedChannel, record, why));
      }
    }
    if (rejected.length > 0) {
      for (const { record, why } of rejected) {
        this.#log.warn(
          { topic: record.topic, partition: record.partition, offset: record.offset, code: why.code, reason: why.reason },
          'kafka: record rejected',
        );
      }
      // Into the dead-letter topic before the log: once the log holds the rejection, a replay
      // skips the record, so the copy must already be in Kafka (at least once).
      const deadLetter = this.#deadLetter;
      if (deadLetter) await this.#retry('dead_letter', () => deadLetter.send(rejected));
    }
    const results = await this.#retry('append', () => this.#hub.publish(inputs));
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      const outcome = results[i]!.duplicate ? 'duplicate' : rejectedAt.has(i) ? 'rejected' : 'stored';
      this.#metrics.records.inc({ topic: m.topic, outcome });
      this.#positions.set(`${m.topic}:${m.partition}`, { topic: m.topic, partition: m.partition, offset: m.offset + 1n });
    }
  }

  /**
   * Runs `op` until it succeeds, backing off while it fails; the consumer reads nothing
   * meanwhile (state `paused`). Only `close()` ends the wait, with Stopping: the batch is then
   * not committed, and Kafka hands it out again later.
   */
  async #retry<T>(operation: 'append' | 'dead_letter', op: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        const r = await op();
        if (failures > 0) {
          this.#log.info({ operation, failures }, 'kafka: resumed');
          if (this.#state === 'paused') this.#setState('consuming');
        }
        return r;
      } catch (err) {
        if (this.#closing) throw new Stopping();
        this.#metrics.retries.inc({ operation });
        if (failures === 0 || failures % RETRY_WARN_EVERY === 0) {
          const why = describeKafkaFailure(err, this.#config.brokers);
          this.#log.warn({ err, operation, failures: failures + 1 }, `kafka: paused, retrying: ${why}`);
        }
        this.#setState('paused');
        await this.#sleep(this.#backoff(failures + 1));
      }
    }
  }

  /** Commits the stored positions of assigned partitions; one commit in flight, the rest coalesced. */
  #commit(): Promise<void> {
    if (this.#committing) {
      this.#commitAgain = true;
      return this.#committing;
    }
    const consumer = this.#consumer;
    if (!consumer) return Promise.resolve();
    this.#committing = (async () => {
      do {
        this.#commitAgain = false;
        const owned = this.#owned();
        const offsets = [];
        for (const [key, pos] of this.#positions) {
          // A revoked partition is someone else's now: committing it could move them backwards.
          if (owned.has(key)) offsets.push({ ...pos, leaderEpoch: -1 });
        }
        if (offsets.length === 0) break;
        try {
          await consumer.commit({ offsets });
        } catch (err) {
          this.#metrics.commitErrors.inc();
          this.#log.debug({ err }, 'kafka: commit failed; the next batch commits again');
          break;
        }
      } while (this.#commitAgain);
      this.#committing = undefined;
    })();
    return this.#committing;
  }

  /** The `topic:partition`s assigned to this member now. */
  #owned(): Set<string> {
    const owned = new Set<string>();
    for (const a of this.#consumer?.assignments ?? []) for (const p of a.partitions) owned.add(`${a.topic}:${p}`);
    return owned;
  }

  /** Waits `ms`, or rejects with Stopping as soon as `close()` is called. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        this.#stopWaiters.delete(wake);
        reject(new Stopping());
      };
      const timer = setTimeout(() => {
        this.#stopWaiters.delete(wake);
        resolve();
      }, ms);
      this.#stopWaiters.add(wake);
    });
  }

  #backoff(failures: number): number {
    const exp = Math.min(this.#config.retryMaxDelaySeconds * 1000, RETRY_BASE_DELAY_MS * 2 ** Math.min(failures, 16));
    // Full jitter, so members of a group that failed together do not retry in step.
    return Math.round(exp / 2 + (Math.random() * exp) / 2);
  }

  /** Final commit, then leave the group and close the clients. Safe to call more than once. */
  async #teardown(): Promise<void> {
    this.#lag?.close();
    this.#lag = undefined;
    const consumer = this.#consumer;
    if (consumer) {
      // Wait for a commit in flight, then commit the newest positions; bounded either way.
      let timer: NodeJS.Timeout | undefined;
      const giveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, FINAL_COMMIT_TIMEOUT_MS)));
      await Promise.race([(async () => {
        if (this.#committing) await this.#committing;
        await this.#commit();
      })(), giveUp]);
      clearTimeout(timer);
      this.#consumer = undefined;
      // force: close the streams first (dropping what is buffered and not stored: it was not
      // committed either), then LeaveGroup, so the partitions move without a session timeout.
      await new Promise<void>((resolve) => {
        consumer.close(true, (err) => {
          if (err) this.#log.warn({ err }, 'kafka: leaving the group failed');
          resolve();
        });
      });
    }
    this.#positions = new Map();
    if (this.#closing) await this.#deadLetter?.close();
  }

  #setState(s: KafkaSourceState): void {
    if (this.#state === 'closed') return;
    this.#state = s;
    this.#metrics.state = s;
  }
}
