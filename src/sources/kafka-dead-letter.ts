import { Producer } from '@platformatic/kafka';
import type { KafkaConfig } from '../config/kafka-schema.js';
import { kafkaConnectionOptions } from './kafka-connection.js';
import type { KafkaRecord, Rejection } from './kafka-record.js';

/**
 * The dead-letter topic: rejected records, produced unchanged (key, value, headers) plus the
 * reason in `herald-*` headers, acknowledged by every in-sync replica. The producer is created
 * on the first rejection.
 */
export class KafkaDeadLetter {
  readonly #config: KafkaConfig;
  readonly #topic: string;
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;

  constructor(config: KafkaConfig, topic: string) {
    this.#config = config;
    this.#topic = topic;
  }

  async send(rejected: readonly { record: KafkaRecord; why: Rejection }[]): Promise<void> {
    this.#producer ??= new Producer<Buffer, Buffer, Buffer, Buffer>(kafkaConnectionOptions(this.#config, '-dead-letter'));
    await this.#producer.send({
      acks: -1,
      messages: rejected.map(({ record, why }) => {
        const headers = new Map<Buffer, Buffer>();
        for (const [k, v] of record.headers) if (v !== undefined) headers.set(k, v);
        headers.set(Buffer.from('herald-error-code'), Buffer.from(why.code));
        headers.set(Buffer.from('herald-error-reason'), Buffer.from(why.reason));
        headers.set(Buffer.from('herald-source-topic'), Buffer.from(record.topic));
        headers.set(Buffer.from('herald-source-partition'), Buffer.from(String(record.partition)));
        headers.set(Buffer.from('herald-source-offset'), Buffer.from(String(record.offset)));
        return { topic: this.#topic, key: record.key, value: record.value, headers };
      }),
    });
  }

  /** Closes the producer, if one was made. Idempotent. */
  async close(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    await producer?.close().catch(() => undefined);
  }
}
