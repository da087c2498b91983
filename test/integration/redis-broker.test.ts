import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { RedisBroker } from '../../src/brokers/redis-broker.js';
import type { StoredEvent } from '../../src/core/event.js';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { deletePrefix, needRedis, testClient, uniquePrefix } from '../helpers/redis.js';

/** What the Redis broker adds to the Broker contract: it survives a dead connection and a replaced log. */

const ev = (i: number) => ({ channel: 'c', type: 'message', data: String(i) });

/** Records every batch a broker hands over, and lets a test wait for an event. */
function listen(broker: RedisBroker): { events: StoredEvent[]; seen(pred: (e: StoredEvent) => boolean): Promise<void> } {
  const events: StoredEvent[] = [];
  let waiting: { pred: (e: StoredEvent) => boolean; resolve: () => void } | undefined;
  broker.onEvents((batch) => {
    events.push(...batch);
    if (waiting && batch.some(waiting.pred)) waiting.resolve();
  });
  return {
    events,
    seen(pred) {
      if (events.some(pred)) return Promise.resolve();
      return new Promise((resolve) => (waiting = { pred, resolve }));
    },
  };
}

async function setUp(t: TestContext): Promise<{ url: string; redis: Redis; prefix: string } | undefined> {
  const url = await needRedis(t);
  if (!url) return undefined;
  const prefix = uniquePrefix();
  let redis: Redis | undefined;
  t.after(() => redis && deletePrefix(redis, prefix));
  redis = testClient(t, url);
  return { url, redis, prefix };
}

/**
 * A TCP relay to Redis. `silence()` makes its open connections go silent (nothing passes, nothing
 * closes), as behind a failover or a dropped route; connections opened after that work.
 * `holdOn(trigger)`: once a client sends a command containing `trigger`, every reply to it is
 * held (Redis has run the command; its answer is on the way) until `release()`.
 */
async function relay(t: TestContext, url: string) {
  const target = new URL(url);
  const open: Socket[] = [];
  const all: Socket[] = [];
  let trigger: string | undefined;
  let holding = false;
  const queued: { to: Socket; chunk: Buffer }[] = [];
  let onHeld: () => void = () => undefined;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.on('data', (chunk: Buffer) => {
      if (trigger !== undefined && chunk.toString('latin1').toLowerCase().includes(trigger)) {
        trigger = undefined;
        holding = true;
        onHeld();
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holding) queued.push({ to: client, chunk });
      else client.write(chunk);
    });
    for (const s of [client, upstream]) s.on('error', () => undefined);
    open.push(client, upstream);
    all.push(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of all) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as { port: number }).port,
    silence() {
      for (const s of open.splice(0)) {
        s.removeAllListeners('data');
        s.pause();
      }
    },
    holdOn(command: string): Promise<void> {
      trigger = command;
      return new Promise<void>((resolve) => (onHeld = resolve));
    },
    release() {
      holding = false;
      for (const { to, chunk } of queued.splice(0)) to.write(chunk);
    },
  };
}

test('a read that hangs on a silently dead connection is replaced, and no event is missed', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const link = await relay(t, s.url);
  const nodeClient = new Redis({ host: '127.0.0.1', port: link.port, maxRetriesPerRequest: 1 });
  nodeClient.on('error', () => undefined);
  t.after(() => nodeClient.disconnect());
  const broker = new RedisBroker({ redis: nodeClient, prefix: s.prefix, probeIntervalMs: 100 });
  const got = listen(broker);
  await broker.started;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  await store.append([ev(1)]);
  await got.seen((e) => e.data === '1');
  link.silence();
  await store.append([ev(2)]);
  await store.append([ev(3)]);
  await got.seen((e) => e.data === '3');
  assert.deepEqual(got.events.map((e) => e.data), ['1', '2', '3']);
  await broker.close();
  await store.close();
});

test('a log that was lost and started again is followed from its start, under its new epoch', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  const broker = new RedisBroker({ redis: testClient(t, s.url), prefix: s.prefix, probeIntervalMs: 100 });
  const got = listen(broker);
  await broker.started;
  const old = await store.append([ev(1), ev(2), ev(3)]);
  await got.seen((e) => e.data === '3');
  await deletePrefix(s.redis, s.prefix);
  const fresh = await store.append([ev(10)]);
  assert.equal(fresh[0]!.event.seq, 1);
  assert.notEqual(fresh[0]!.event.id, old[0]!.event.id);
  await got.seen((e) => e.data === '10');
  assert.equal(got.events.at(-1)!.id, fresh[0]!.event.id, 'the new log event, with its new id');
  await broker.close();
  await store.close();
});

test('a log rolled back below the last id read is followed again from its start', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  const broker = new RedisBroker({ redis: testClient(t, s.url), prefix: s.prefix, probeIntervalMs: 100 });
  const got = listen(broker);
  await broker.started;
  await store.append([1, 2, 3, 4, 5].map(ev));
  await got.seen((e) => e.data === '5');
  // A replica promoted before it had 4 and 5, with the epoch it had.
  const log = `${s.prefix}log`;
  const kept = await s.redis.xrange(log, '-', '3-0');
  await s.redis.del(log);
  for (const [id, fields] of kept) await s.redis.xadd(log, id, ...fields);
  await s.redis.set(`${s.prefix}seq`, '3');
  // The next append replaces the epoch (the store saw 5) and takes seq 4 of the new log: the
  // broker must not wait for ids above 5, and hands it over under the new epoch.
  const [next] = await store.append([ev(6)]);
  assert.equal(next!.event.seq, 4);
  await got.seen((e) => e.id === next!.event.id);
  assert.equal(got.events.find((e) => e.id === next!.event.id)!.data, '6');
  await broker.close();
  await store.close();
});

test('publish hands a stored batch to this node even while Redis is unreachable; close is idempotent', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
  const redis = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  redis.on('error', () => undefined);
  t.after(() => redis.disconnect());
  const broker = new RedisBroker({ redis, prefix: uniquePrefix(), probeIntervalMs: 100 });
  const heard: number[] = [];
  broker.onEvents((events) => heard.push(...events.map((e) => e.seq)));
  const event = { seq: 7, id: 'abc123-7', channel: 'a', type: 'message', data: '1', time: 0, encoded: {} };
  await broker.publish([event]);
  assert.deepEqual(heard, [7]);
  await broker.close();
  await broker.close();
  await assert.rejects(broker.publish([event]), /closed/i);
});

test('an append handed over while a quiet read checks the stream is no reason to replace the log', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const store = new RedisEventStore({ redis: s.redis, prefix: s.prefix });
  await store.append([ev(1)]);
  // After a read that found nothing new, the broker asks whether the stream is still there
  // (EXISTS, then its newest entry). Redis answers at once; the answer is held on its way.
  const link = await relay(t, s.url);
  const held = link.holdOn('exists');
  const nodeClient = new Redis({ host: '127.0.0.1', port: link.port, maxRetriesPerRequest: 1 });
  nodeClient.on('error', () => undefined);
  t.after(() => nodeClient.disconnect());
  const broker = new RedisBroker({ redis: nodeClient, prefix: s.prefix, probeIntervalMs: 100 });
  t.after(() => broker.close());
  const got = listen(broker);
  await broker.started;
  const epoch = await s.redis.hget(`${s.prefix}meta`, 'epoch');
  await held;
  // Meanwhile this node appends and hands its batch over, as a publish does: the stream holds
  // it, though the answer on its way was read before.
  const appended = await store.append([ev(2), ev(3)]);
  await broker.publish(appended.map((r) => r.event));
  link.release();
  // A few quiet reads later the log is the same log, and nothing was handed over twice.
  await new Promise((r) => setTimeout(r, 500));
  await store.append([ev(4)]);
  await got.seen((e) => e.data === '4');
  assert.equal(await s.redis.hget(`${s.prefix}meta`, 'epoch'), epoch, 'the epoch was replaced');
  assert.deepEqual(got.events.map((e) => e.data), ['2', '3', '4']);
  await broker.close();
  await store.close();
});
