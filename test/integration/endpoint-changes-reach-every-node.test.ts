import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { buildConfig } from '../../src/config/load.js';
import type { DeliveryStore } from '../../src/core/delivery-store.js';
import { Hub } from '../../src/core/hub.js';
import { createLogger } from '../../src/observability/logger.js';
import { RedisDeliveryStore } from '../../src/stores/redis-delivery-store.js';
import { POSTGRES_DELIVERY_MIGRATIONS } from '../../src/stores/postgres-delivery-migrations.js';
import { migratePostgres } from '../../src/stores/postgres-migrations.js';
import { PostgresDeliveryStore } from '../../src/stores/postgres-delivery-store.js';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { OutboundWebhooks } from '../../src/transports/webhook-out/outbound-webhooks.js';
import { PLANNER_LEASE } from '../../src/transports/webhook-out/planner-lease.js';
import { waitFor } from '../helpers/herald.js';
import { deletePrefix, needRedis, uniquePrefix } from '../helpers/redis.js';
import { needPostgres, testDatabases } from '../helpers/postgres-deliveries.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { connect } from '../contract/delivery-store.contract.js';

/**
 * Nodes sharing a delivery store each cache the endpoints. An endpoint created, changed or
 * deleted through one node reaches every other within about a second (the registry polls the
 * store's endpoints version), and the node that plans applies it before planning the next events,
 * without waiting for that poll.
 */

const config = buildConfig({ outbound: { allowPrivateTargets: true, sweepIntervalSeconds: 0.1 } }, {});
const log = createLogger('silent');
/** milliseconds a change may take to reach the other node: one poll period and some slack. */
const REACH_DEADLINE_MS = 1_500;
/** milliseconds for a planned delivery to arrive at a receiver on this machine. */
const DELIVERY_DEADLINE_MS = 10_000;

/** Opens one node's own handle on the shared delivery store. */
type StoreHandle = () => DeliveryStore;

async function twoNodes(t: TestContext, handle: (log: { file: string; events: SqliteEventStore }) => StoreHandle) {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-endpoint-changes-')), 'herald.db');
  const events = new SqliteEventStore({ file });
  // One log, as nodes sharing a backend share one; each node has its own delivery store handle.
  const hub = new Hub({ store: events, broker: new MemoryBroker() });
  const rx1: Receiver = await startReceiver();
  const rx2: Receiver = await startReceiver();
  const open = handle({ file, events });
  const a = new OutboundWebhooks({ hub, store: open(), config: config.outbound, log });
  await a.start();
  const b = new OutboundWebhooks({ hub, store: open(), config: config.outbound, log });
  await b.start();
  t.after(async () => {
    await b.close().catch(() => {});
    await a.close().catch(() => {});
    await hub.close();
    await events.close();
    await rx1.close();
    await rx2.close();
  });
  assert.equal((await a.store.leaseHolder(PLANNER_LEASE, Date.now()))?.owner, a.owner, 'the first node plans');
  let n = 0;
  const publish = async () => (await hub.publish([{ channel: 'x', type: 'message', data: String(++n) }]))[0]!;
  return { a, b, rx1, rx2, publish };
}

/** The bodies' `data` a receiver got. */
const got = (rx: Receiver) => rx.requests.map((r) => String((JSON.parse(r.body) as { data: unknown }).data));

async function endpointChangesReachEveryNode(t: TestContext, handle: Parameters<typeof twoNodes>[1]): Promise<void> {
  const { a, b, rx1, rx2, publish } = await twoNodes(t, handle);

  // Created on the node that does not plan, then an event at once: the planner (on a) plans it.
  const ep = await b.createEndpoint({ url: rx1.url, channels: ['x'] });
  const first = await publish();
  await waitFor(() => got(rx1).includes('1'), DELIVERY_DEADLINE_MS, 'the event after the creation delivered');
  await waitFor(() => a.registry.get(ep.id), REACH_DEADLINE_MS, 'the new endpoint known on the other node');
  assert.equal(first.event.seq > ep.fromSeq, true);

  // Changed on b: the next event goes to the new URL, not the old one.
  await b.updateEndpoint(ep.id, { url: rx2.url });
  await publish();
  await waitFor(() => got(rx2).includes('2'), DELIVERY_DEADLINE_MS, 'the event after the change delivered to the new URL');
  assert.deepEqual(got(rx1), ['1'], 'nothing after the change went to the old URL');
  await waitFor(() => a.registry.get(ep.id)?.url === rx2.url, REACH_DEADLINE_MS, 'the change known on the other node');

  // Deleted on b: nothing is planned for it any more.
  await b.deleteEndpoint(ep.id);
  const witness = await a.createEndpoint({ url: rx1.url, channels: ['x'] });
  const last = await publish();
  await waitFor(async () => ((await a.store.plannedThrough()) ?? 0) >= last.event.seq, DELIVERY_DEADLINE_MS, 'the last event planned');
  assert.equal((await a.store.listDeliveries(witness.id, { limit: 10 })).length, 1, 'planned for the endpoint that exists');
  assert.deepEqual(await a.store.listDeliveries(ep.id, { limit: 10 }), [], 'nothing planned for the deleted endpoint');
  await waitFor(() => a.registry.get(ep.id) === undefined, REACH_DEADLINE_MS, 'the deletion known on the other node');

  // And the other way: created on the planning node, known on the other.
  await waitFor(() => b.registry.get(witness.id), REACH_DEADLINE_MS, 'an endpoint of the planning node known on the other');
  await waitFor(() => got(rx1).includes('3'), DELIVERY_DEADLINE_MS, 'the last event delivered to the witness');
  assert.deepEqual(got(rx2), ['2'], 'the deleted endpoint got nothing more');
}

test('sqlite: an endpoint created, changed or deleted on one node is used by the other (two handles on one file)', async (t) => {
  await endpointChangesReachEveryNode(t, ({ file }) => () => {
    const db = connect(file);
    t.after(() => db.close());
    return new SqliteDeliveryStore(db);
  });
});

test('redis: an endpoint created, changed or deleted on one node is used by the other (two clients on one prefix)', async (t) => {
  const url = await needRedis(t);
  if (!url) return;
  const prefix = uniquePrefix('herald-endpoint-changes');
  const clients: Redis[] = [];
  t.after(async () => {
    await deletePrefix(clients[0]!, prefix);
    for (const c of clients) c.disconnect();
  });
  await endpointChangesReachEveryNode(t, ({ events }) => () => {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    clients.push(redis);
    return new RedisDeliveryStore({ redis, prefix, logId: async () => (await events.head()).epoch });
  });
});

test('postgres: an endpoint created, changed or deleted on one node is used by the other (two pools on one database)', async (t) => {
  if (!(await needPostgres(t))) return;
  const databases = testDatabases('herald_endpoint_changes');
  const url = await databases.create();
  const pools: pg.Pool[] = [];
  const pool = () => {
    const p = new pg.Pool({ connectionString: url, max: 4 });
    p.on('error', () => undefined);
    pools.push(p);
    return p;
  };
  t.after(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await databases.dropAll();
  });
  await migratePostgres(pool(), 'herald', [POSTGRES_DELIVERY_MIGRATIONS]);
  // In a subtest, so both nodes have closed (its own after hooks) before the pools end.
  await t.test('two nodes', (st) =>
    endpointChangesReachEveryNode(st, ({ events }) => () =>
      new PostgresDeliveryStore({ pool: pool(), logId: async () => (await events.head()).epoch }),
    ),
  );
});
