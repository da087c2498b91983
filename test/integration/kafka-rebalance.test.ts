import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { spawnHerald, waitFor } from '../helpers/herald.js';
import { Redis } from 'ioredis';
import { deletePrefix, needRedis, uniquePrefix } from '../helpers/redis.js';
import { createTopics, groupMembers, needKafka, testProducer, unique, type TestRecord } from '../helpers/kafka.js';
import { assertExactlyOnceInOrder, FAST_GROUP, metric, waitForLog } from './kafka-helpers.js';

/** Keys spread over the partitions (many, so both members' partitions get records). */
const KEYS = 24;
const CHUNK = 200;

/**
 * The log the two processes share: one SQLite file (B opens A's data folder), or one Redis key
 * prefix. Undefined after skipping the test when the backend is not there.
 */
interface SharedLog {
  name: string;
  /** The config's backend section, and what deletes the log afterwards (after both stopped). */
  backend(t: TestContext): Promise<{ config: Record<string, unknown>; remove?: () => Promise<void> } | undefined>;
  /** B's data folder: A's where the file is the log. */
  shareDataDir: boolean;
}

const LOGS: SharedLog[] = [
  { name: 'one SQLite file', backend: async () => ({ config: {} }), shareDataDir: true },
  {
    name: 'one Redis prefix',
    backend: async (t) => {
      const url = await needRedis(t);
      if (!url) return undefined;
      const keyPrefix = uniquePrefix('rebalance').slice(1, -2);
      const remove = async () => {
        const redis = new Redis(url, { maxRetriesPerRequest: 1 });
        await deletePrefix(redis, `{${keyPrefix}}:`).finally(() => redis.disconnect());
      };
      return { config: { backend: { type: 'redis', url, keyPrefix } }, remove };
    },
    shareDataDir: false,
  },
];

for (const shared of LOGS) {
  test(`a rebalance between two Herald processes in one group shares the partitions without a duplicate (${shared.name})`, async (t) => {
    const brokers = await needKafka(t);
    if (!brokers) return;
    const backend = await shared.backend(t);
    if (!backend) return;
    const topic = unique('rebalance');
    await createTopics(brokers, [topic], 6);
    const groupId = unique('herald-rebalance');
    // Both processes write one log: exactly once holds per log, and that log is where a replay
    // after the rebalance meets the records the other member already stored.
    const config = {
      ...backend.config,
      kafka: { brokers, groupId, ...FAST_GROUP, batchMaxRecords: 50, topics: [{ topic, channel: 'shared.{key}', fromBeginning: true }] },
    };
    const a = await spawnHerald(config);
    let b: Awaited<ReturnType<typeof spawnHerald>> | undefined;
    t.after(async () => {
      await a.stop();
      await b?.stop();
      await backend.remove?.();
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
    b = await spawnHerald(config, shared.shareDataDir ? { dataDir: a.dataDir } : {});
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
}
