import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import type { EventInput } from '../../src/core/event.js';
import { RedisEventStore, ReplicationTimeoutError } from '../../src/stores/redis-event-store.js';
import { deletePrefix, needRedis, testClient, uniquePrefix } from '../helpers/redis.js';

/**
 * What the Redis log adds to the EventStore contract: one log shared by several nodes, and an
 * identity that changes when Redis loses or rolls back what it held.
 */

const input = (data: unknown, extra: Partial<EventInput> = {}): EventInput => ({
  channel: 'orders',
  type: 'message',
  data: JSON.stringify(data),
  ...extra,
});

/** A client on `url` whose keys under a fresh prefix are deleted after the test. */
async function setUp(t: TestContext): Promise<{ url: string; redis: Redis; prefix: string } | undefined> {
  const url = await needRedis(t);
  if (!url) return undefined;
  const prefix = uniquePrefix();
  // Registered first, so it runs while the client is still connected (after hooks run in order).
  let redis: Redis | undefined;
  t.after(() => redis && deletePrefix(redis, prefix));
  redis = testClient(t, url);
  return { url, redis, prefix };
}

test('a log whose keys are gone (FLUSHALL, a restart without persistence) gets a new epoch', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  const before = await store.append([input(1), input(2)]);
  const old = (await store.head()).epoch;
  await deletePrefix(s.redis, s.prefix);
  const head = await store.head();
  assert.notEqual(head.epoch, old, 'ids of the lost log must not name events of the new one');
  assert.equal(head.lastSeq, 0);
  const [after] = await store.append([input(3)]);
  assert.equal(after!.event.id, `${head.epoch}-1`);
  assert.notEqual(after!.event.id, before[0]!.event.id);
  await store.close();
});

test('a counter that went back below a seq the handle saw (a promoted replica) replaces the epoch', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  const first = await store.append([1, 2, 3, 4, 5].map((i) => input(i)));
  const old = first[0]!.event.id.split('-')[0]!;
  // What a replica promoted before it had events 4 and 5 holds: the stream and counter at 3.
  const log = `${s.prefix}log`;
  const kept = await s.redis.xrange(log, '-', '3-0');
  await s.redis.del(log);
  for (const [id, fields] of kept) await s.redis.xadd(log, id, ...fields);
  await s.redis.set(`${s.prefix}seq`, '3');
  const [next] = await store.append([input('after the failover')]);
  const epoch = next!.event.id.split('-')[0]!;
  assert.notEqual(epoch, old, `${old}-4 must not come to name another event`);
  assert.equal(next!.event.seq, 4, 'the new log goes on from what it holds');
  assert.equal((await store.head()).epoch, epoch);
  // Another node's handle (which had not seen 4 and 5) adopts the new epoch rather than the old.
  const other = new RedisEventStore({ redis: testClient(t, s.url), prefix: s.prefix });
  assert.equal((await other.head()).epoch, epoch);
  await other.close();
  await store.close();
});

test('head() alone notices the counter went back, and the log is replaced only once', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const a = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  const b = new RedisEventStore({ redis: testClient(t, s.url), prefix: s.prefix });
  await a.append([1, 2, 3, 4].map((i) => input(i)));
  const old = (await a.head()).epoch;
  assert.equal((await b.head()).epoch, old);
  await s.redis.set(`${s.prefix}seq`, '2');
  const [ha, hb] = await Promise.all([a.head(), b.head()]);
  assert.notEqual(ha.epoch, old);
  assert.equal(hb.epoch, ha.epoch, 'the second handle finds the epoch already replaced');
  // The stream still held seq 4: the counter is raised past it, so no id is given twice.
  assert.ok(ha.lastSeq >= 4);
  const [next] = await b.append([input(5)]);
  assert.equal(next!.event.seq, 5);
  await a.close();
  await b.close();
});

test('two nodes appending at once to one log get every seq once, with no gaps', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const nodes = [s.redis, testClient(t, s.url)].map((redis) => new RedisEventStore({ redis, prefix: s.prefix }));
  const APPENDS_PER_NODE = 100;
  const BATCH = 5;
  const seqs: number[] = [];
  await Promise.all(
    nodes.map(async (store, n) => {
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < APPENDS_PER_NODE; i++) {
        const batch = Array.from({ length: BATCH }, (_, j) => input(`${n}.${i}.${j}`, { idempotencyKey: `${n}.${i}.${j}` }));
        inFlight.push(store.append(batch).then((rs) => void seqs.push(...rs.map((r) => r.event.seq))));
      }
      await Promise.all(inFlight);
    }),
  );
  const total = nodes.length * APPENDS_PER_NODE * BATCH;
  assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => i + 1));
  const log = await nodes[1]!.read(['orders'], 0, total + 1);
  assert.deepEqual(log.map((e) => e.seq), Array.from({ length: total }, (_, i) => i + 1));
  // A key appended on one node is a duplicate on the other.
  const [dup] = await nodes[1]!.append([input('again', { idempotencyKey: '0.7.3' })]);
  assert.equal(dup!.duplicate, true);
  assert.equal(dup!.event.data, JSON.stringify('0.7.3'));
  for (const store of nodes) await store.close();
});

test('waitReplicas: too few replicas rejects with ReplicationTimeoutError, and the events are stored', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const replicas = Number(/connected_slaves:(\d+)/.exec(await s.redis.info('replication'))?.[1] ?? 0);
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix, waitReplicas: replicas + 1, waitTimeoutMs: 50 });
  await assert.rejects(store.append([input('x', { idempotencyKey: 'w1' })]), ReplicationTimeoutError);
  const plain = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  const [retry] = await plain.append([input('x', { idempotencyKey: 'w1' })]);
  assert.equal(retry!.duplicate, true, 'a retry with the same key finds the stored event');
  await store.close();
  await plain.close();
});

test('with Redis unreachable every call rejects instead of waiting', async (t) => {
  // A port nobody listens on: taken from the system, then released.
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
  const redis = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  redis.on('error', () => undefined);
  t.after(() => redis.disconnect());
  const store = new RedisEventStore({ redis, prefix: uniquePrefix() });
  await assert.rejects(store.append([input(1)]));
  await assert.rejects(store.head());
  await assert.rejects(store.readPage(['>'], 0, 10));
  await assert.rejects(store.prune({ maxAgeMs: 0, maxEvents: 1, idempotencyTtlMs: 1 }, Date.now()));
  await assert.rejects(store.listReceipts('stripe', { before: 0, limit: 1 }));
  await store.close();
});

test('close() leaves the caller its client', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  await store.append([input(1)]);
  await store.close();
  assert.equal(await s.redis.ping(), 'PONG');
});
