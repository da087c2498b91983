import { Consumer } from '@platformatic/kafka';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { kafkaSchema } from '../../src/config/kafka-schema.js';
import type { EventInput } from '../../src/core/event.js';
import type { AppendResult } from '../../src/core/event-store.js';
import { Hub } from '../../src/core/hub.js';
import { createLogger } from '../../src/observability/logger.js';
import { KafkaSource } from '../../src/sources/kafka-source.js';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { startInProcess, waitFor } from '../helpers/herald.js';
import { createTopics, needKafka, testProducer, unique } from '../helpers/kafka.js';
import { FAST_GROUP, metric, readLog } from './kafka-helpers.js';

describe('Kafka in: bad records and a failing log never stall a partition', () => {
  test('a poison record does not stall its partition: it is recorded as rejected and copied to the dead-letter topic', async (t) => {
    const brokers = await needKafka(t);
    if (!brokers) return;
    const topic = unique('poison');
    const dlt = unique('poison-dlt');
    await createTopics(brokers, [topic, dlt], 1);
    const h = await startInProcess({
      kafka: { brokers, groupId: unique('herald-poison'), ...FAST_GROUP, deadLetterTopic: dlt, topics: [{ topic, channel: 'p.{key}', fromBeginning: true }] },
    });
    t.after(() => h.close());
    const producer = testProducer(brokers);
    t.after(() => producer.close());
    const notUtf8 = Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]); // an invalid 2-byte sequence
    await producer.send([
      { topic, key: 'a', value: '{"n":0}' },
      { topic, key: 'a', value: notUtf8, headers: { trace: 't-1' } },
      { topic, key: 'a', value: '{"n":1}' },
      { topic, value: '{"n":"no key for {key}"}' },
      { topic, key: 'a', value: '{"n":2}' },
    ]);
    const events = await waitFor(
      async () => {
        const log = await readLog(h.url, '>');
        return log.length >= 5 ? log : undefined;
      },
      20_000,
      'five events',
    );
    assert.deepEqual(
      events!.map((e) => [e.channel, e.type]),
      [
        ['p.a', 'message'],
        ['kafka.rejected', 'kafka.rejected'],
        ['p.a', 'message'],
        ['kafka.rejected', 'kafka.rejected'],
        ['p.a', 'message'],
      ],
    );
    assert.deepEqual(events!.filter((e) => e.channel === 'p.a').map((e) => e.data.n), [0, 1, 2]);
    const [r1, r2] = events!.filter((e) => e.channel === 'kafka.rejected').map((e) => e.data);
    assert.equal(r1.code, 'RECORD_NOT_UTF8');
    assert.equal(r1.offset, 1);
    assert.equal(r1.valueBytes, notUtf8.length);
    assert.equal(r2.code, 'RECORD_UNMAPPABLE');
    assert.match(r2.reason, /no key/);
    assert.equal(await metric(h.url, 'herald_kafka_records_total', { outcome: 'rejected' }), 2);

    // The dead-letter topic holds the records byte for byte, with the reason in headers.
    const consumer = new Consumer({ groupId: unique('dlt-reader'), clientId: 'dlt-reader', bootstrapBrokers: brokers });
    t.after(() => consumer.close(true));
    const stream = await consumer.consume({ topics: [dlt], mode: 'earliest', autocommit: false, maxWaitTime: 100 });
    const dead: { value: Buffer | undefined; headers: Map<string, string> }[] = [];
    stream.on('data', (m) => {
      const headers = new Map<string, string>();
      for (const [k, v] of m.headers) headers.set(k.toString(), v?.toString() ?? '');
      dead.push({ value: m.value ?? undefined, headers });
    });
    await waitFor(() => dead.length >= 2, 20_000, 'two dead letters');
    assert.deepEqual(dead[0]!.value, notUtf8);
    assert.equal(dead[0]!.headers.get('herald-error-code'), 'RECORD_NOT_UTF8');
    assert.equal(dead[0]!.headers.get('herald-source-topic'), topic);
    assert.equal(dead[0]!.headers.get('herald-source-offset'), '1');
    assert.equal(dead[0]!.headers.get('trace'), 't-1');
    assert.equal(dead[1]!.headers.get('herald-error-code'), 'RECORD_UNMAPPABLE');
  });

  test('pauses while the log fails, then resumes by itself with every record once and in order', async (t) => {
    const brokers = await needKafka(t);
    if (!brokers) return;
    const topic = unique('backpressure');
    await createTopics(brokers, [topic], 2);
    // A real memory log behind a switch: while `down`, every append fails as a broken disk would.
    const inner = new MemoryEventStore();
    let down = true;
    let failedAppends = 0;
    const append = (inputs: readonly EventInput[]): Promise<AppendResult[]> => {
      if (down) {
        failedAppends++;
        return Promise.reject(new Error('SQLITE_IOERR: disk I/O error'));
      }
      return inner.append(inputs);
    };
    const store = new Proxy(inner, {
      get(target, prop) {
        if (prop === 'append') return append;
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const hub = new Hub({ store, broker: new MemoryBroker() });
    const registry = new Registry();
    const config = kafkaSchema.parse({
      brokers,
      groupId: unique('herald-backpressure'),
      ...FAST_GROUP,
      batchMaxRecords: 20,
      bufferMaxRecords: 50,
      retryMaxDelaySeconds: 0.2,
      topics: [{ topic, channel: 'bp.{key}', fromBeginning: true }],
    });
    const source = new KafkaSource({ config, hub, log: createLogger('silent'), registry });
    t.after(() => source.close());
    source.start();
    const producer = testProducer(brokers);
    t.after(() => producer.close());
    const total = 1_000;
    for (let i = 0; i < total; i += 100) {
      await producer.send(Array.from({ length: 100 }, (_, j) => ({ topic, key: `k${(i + j) % 4}`, value: JSON.stringify({ n: i + j, key: `k${(i + j) % 4}` }) })));
    }
    await waitFor(() => source.state === 'paused' && failedAppends >= 3, 20_000, 'the consumer to pause on a failing log');
    assert.equal(source.ready, true, 'paused on the log is still a group member');
    assert.equal((await inner.read(['>'], 0, 10)).length, 0);

    down = false;
    await waitFor(async () => (await inner.head()).lastSeq >= total, 20_000, 'every record after the log came back');
    assert.equal(source.state, 'consuming');
    const events = await inner.read(['>'], 0, 2 * total);
    assert.equal(events.length, total);
    const data = events.map((e) => JSON.parse(e.data) as { n: number; key: string });
    assert.deepEqual([...new Set(data.map((d) => d.n))].length, total);
    for (let k = 0; k < 4; k++) {
      const ns = data.filter((d) => d.key === `k${k}`).map((d) => d.n);
      assert.deepEqual(ns, [...ns].sort((x, y) => x - y), `order of k${k}`);
    }
    const retries = (await registry.getSingleMetric('herald_kafka_retries_total')!.get()).values;
    assert.ok(retries.some((v) => v.labels.operation === 'append' && v.value >= 3));
    await source.close();
    await hub.close();
  });
});
