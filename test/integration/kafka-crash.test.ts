import { test } from 'node:test';
import { spawnHerald, waitFor } from '../helpers/herald.js';
import { createTopics, needKafka, testProducer, unique, type TestRecord } from '../helpers/kafka.js';
import { assertExactlyOnceInOrder, FAST_GROUP, metric, waitForLog } from './kafka-helpers.js';

const TOTAL = 10_000;
const KEYS = 8;
/** Records per produce call: the stream arrives while Herald consumes it. */
const CHUNK = 250;
/** Kill Herald once it has stored at least this many (and the stream is still being produced). */
const KILL_AFTER_STORED = 2_000;

test('SIGKILL while consuming 10,000 records, then restart: every record is in the log exactly once, in partition order', async (t) => {
  const brokers = await needKafka(t);
  if (!brokers) return;
  const topic = unique('crash');
  await createTopics(brokers, [topic], 4);
  const config = {
    kafka: {
      brokers,
      groupId: unique('herald-crash'),
      ...FAST_GROUP,
      // Small batches: many commits in flight when the kill lands.
      batchMaxRecords: 100,
      topics: [{ topic, channel: 'bulk.{key}', fromBeginning: true }],
    },
  };
  const first = await spawnHerald(config);
  let second: Awaited<ReturnType<typeof spawnHerald>> | undefined;
  t.after(async () => {
    await first.kill().catch(() => undefined);
    await second?.stop();
  });
  const producer = testProducer(brokers);
  t.after(() => producer.close());
  const chunk = (from: number): TestRecord[] =>
    Array.from({ length: Math.min(CHUNK, TOTAL - from) }, (_, i) => {
      const n = from + i;
      const key = `k${n % KEYS}`;
      return { topic, key, value: JSON.stringify({ n, key, pad: 'x'.repeat(64) }) };
    });

  let produced = 0;
  let killedAt = -1;
  while (produced < TOTAL) {
    await producer.send(chunk(produced));
    produced = Math.min(TOTAL, produced + CHUNK);
    if (killedAt < 0 && (await metric(first.url, 'herald_kafka_records_total', { outcome: 'stored' })) >= KILL_AFTER_STORED) {
      await first.kill();
      killedAt = produced;
    }
  }
  if (killedAt < 0) {
    // Herald kept up with the producer to the end: kill it now, with its last commits in flight.
    await first.kill();
    killedAt = produced;
  }
  t.diagnostic(`killed with SIGKILL after ${killedAt} records were produced`);

  second = await spawnHerald(config, { dataDir: first.dataDir });
  const events = await waitForLog(second.url, 'bulk.>', TOTAL, 60_000);
  // Once the lag is 0 everything Kafka holds has been read: nothing more may arrive.
  await waitFor(
    async () => (await metric(second!.url, 'herald_kafka_records_total')) > 0 && (await metric(second!.url, 'herald_kafka_consumer_lag')) === 0,
    20_000,
    'lag 0 after the restart',
  );
  const final = await waitForLog(second.url, 'bulk.>', TOTAL, 1_000);
  const replayed = await metric(second.url, 'herald_kafka_records_total', { outcome: 'duplicate' });
  t.diagnostic(`after the restart Kafka redelivered ${replayed} records the log already held (skipped)`);
  assertExactlyOnceInOrder(final, TOTAL);
  assertExactlyOnceInOrder(events.slice(0, TOTAL), TOTAL);
});
