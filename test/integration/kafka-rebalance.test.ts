import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnHerald, waitFor } from '../helpers/herald.js';
import { createTopics, groupMembers, needKafka, testProducer, unique, type TestRecord } from '../helpers/kafka.js';
import { assertExactlyOnceInOrder, FAST_GROUP, metric, waitForLog } from './kafka-helpers.js';

/** Keys spread over the partitions (many, so both members' partitions get records). */
const KEYS = 24;
const CHUNK = 200;

test('a rebalance between two Herald processes in one group shares the partitions without a duplicate', async (t) => {
  const brokers = await needKafka(t);
  if (!brokers) return;
  const topic = unique('rebalance');
  await createTopics(brokers, [topic], 6);
  const groupId = unique('herald-rebalance');
  // Both processes write one log (one SQLite file): exactly once holds per log, and that log is
  // where a replay after the rebalance meets the records the other member already stored.
  const config = {
    kafka: { brokers, groupId, ...FAST_GROUP, batchMaxRecords: 50, topics: [{ topic, channel: 'shared.{key}', fromBeginning: true }] },
  };
  const a = await spawnHerald(config);
  let b: Awaited<ReturnType<typeof spawnHerald>> | undefined;
  t.after(async () => {
    await a.stop();
    await b?.stop();
  });
  const producer = testProducer(brokers);
  t.after(() => producer.close());
  let n = 0;
  const produce = async (count: number) => {
    for (let end = n + count; n < end; ) {
      const records: TestRecord[] = [];
      for (let i = 0; i < CHUNK && n < end; i++, n++) {
        const key = `k${n % KEYS}`;
        records.push({ topic, key, value: JSON.stringify({ n, key }) });
      }
      await producer.send(records);
    }
  };
  const ready = (url: string) => async () => (await fetch(`${url}/readyz`)).status === 200;

  await waitFor(ready(a.url), 30_000, 'A to join the group');
  await produce(1_000);
  // B joins while records flow: the group rebalances and A gives up half its partitions.
  b = await spawnHerald(config, { dataDir: a.dataDir });
  await produce(1_000);
  await waitFor(ready(b.url), 30_000, 'B to join the group');
  await waitFor(async () => (await groupMembers(brokers, groupId)) === 2, 30_000, 'two members');
  await produce(2_000);
  await waitForLog(b.url, 'shared.>', n, 60_000);
  const storedByA = await metric(a.url, 'herald_kafka_records_total', { outcome: 'stored' });
  const storedByB = await metric(b.url, 'herald_kafka_records_total', { outcome: 'stored' });
  t.diagnostic(`while both ran: A stored ${storedByA}, B stored ${storedByB}`);
  assert.ok(storedByA > 0 && storedByB > 0, 'both members stored records of their partitions');

  // A leaves gracefully (commit, LeaveGroup) while records flow: B takes every partition.
  const stopped = a.stop();
  await produce(1_000);
  assert.equal(await stopped, 0);
  await produce(1_000);
  const events = await waitForLog(b.url, 'shared.>', n, 60_000);
  assert.equal(await groupMembers(brokers, groupId), 1);
  await waitFor(async () => (await metric(b!.url, 'herald_kafka_consumer_lag')) === 0, 20_000, 'lag 0');
  const replayed = await metric(b.url, 'herald_kafka_records_total', { outcome: 'duplicate' });
  t.diagnostic(`${n} records; B skipped ${replayed} redelivered records the log already held`);
  assertExactlyOnceInOrder((await waitForLog(b.url, 'shared.>', n, 1_000)).slice(0), n);
  assert.equal(events.length, n);
});
