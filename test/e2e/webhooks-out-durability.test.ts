import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Hub } from '../../src/core/hub.js';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { createLogger } from '../../src/observability/logger.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { OutboundWebhooks } from '../../src/transports/webhook-out/outbound-webhooks.js';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { buildConfig } from '../../src/config/load.js';
import { postJson, spawnHerald, waitFor } from '../helpers/herald.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { connect } from '../contract/delivery-store.contract.js';

/** Guarantee 5: pending deliveries survive kill -9; two workers never send one delivery at once. */

const outbound = {
  allowPrivateTargets: true,
  retryScheduleSeconds: [0, 0.2, 0.5, 1, 1, 1, 1, 1],
  sweepIntervalSeconds: 0.1,
  // A short lease, so deliveries a killed process had in flight come back quickly.
  timeoutSeconds: 1,
  leaseSeconds: 2,
};

/** A receiver that answers 200 after `delayMs`, closed when the test ends. */
async function slowReceiver(t: TestContext, delayMs: number): Promise<Receiver> {
  const rx = await startReceiver();
  t.after(() => rx.close());
  rx.handle(async () => {
    await new Promise((r) => setTimeout(r, delayMs));
    return { status: 200 };
  });
  return rx;
}

test('SIGKILL in the middle of a burst of 1,000 events: after a restart every event arrives', async (t) => {
  // A receiver that takes a little time, so the burst is still being delivered when we kill.
  const rx = await slowReceiver(t, 2);
  const first = await spawnHerald({ outbound });
  const ep = await postJson(`${first.url}/v1/endpoints`, { url: rx.url, channels: ['burst.*'], maxConcurrency: 4 });
  assert.equal(ep.status, 201);
  const acked: string[] = [];
  for (let b = 0; b < 10; b++) {
    const r = await postJson(
      `${first.url}/v1/publish`,
      Array.from({ length: 100 }, (_, i) => ({ channel: `burst.${i % 7}`, data: { b, i } })),
    );
    assert.equal(r.status, 201);
    acked.push(...(r.json.ids as string[]));
  }
  await waitFor(() => rx.requests.length >= 50, 20_000, 'some deliveries before the kill');
  await first.kill();
  const before = new Set(rx.requests.map((r) => r.headers['webhook-id'])).size;
  assert.ok(before < 1_000, `the kill came mid-burst (${before} delivered before it)`);

  const second = await spawnHerald({ outbound }, { dataDir: first.dataDir });
  t.after(() => second.stop());
  await waitFor(() => new Set(rx.requests.map((r) => r.headers['webhook-id'])).size >= 1_000, 60_000, 'all 1,000 events');
  const byId = new Map<string, string>();
  for (const r of rx.requests) byId.set(String(r.headers['webhook-id']), JSON.parse(r.body).id as string);
  assert.deepEqual([...new Set(byId.values())].sort(), [...acked].sort(), 'every acknowledged event, none missing');
  rx.verifyAll(ep.json.secret);
});

test('two nodes sending from one queue never send the same delivery at once', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-two-')), 'herald.db');
  const config = buildConfig({ outbound: { ...outbound, maxConcurrencyPerEndpoint: 8 } }, {});
  const log = createLogger('silent');
  const events = new SqliteEventStore({ file });
  const hub = new Hub({ store: events, broker: new MemoryBroker() });
  // Both nodes send, each from its own connection to the same file; only the holder of the
  // planner lease (A, started first) plans, so each event becomes one delivery.
  const a = new OutboundWebhooks({ hub, store: new SqliteDeliveryStore(events.database), config: config.outbound, log });
  const b = new OutboundWebhooks({ hub, store: new SqliteDeliveryStore(connect(file)), config: config.outbound, log });
  const rx = await startReceiver();
  rx.handle(async () => {
    await new Promise((r) => setTimeout(r, Math.random() * 10));
    return { status: 200 };
  });
  t.after(async () => {
    await a.close();
    await b.close();
    await hub.close();
    await events.close();
    await rx.close();
  });
  await a.start();
  const ep = await a.createEndpoint({ url: rx.url, channels: ['>'] });
  await b.start(); // loads the endpoint A created
  await hub.publish(Array.from({ length: 300 }, (_, i) => ({ channel: 'x', type: 'message', data: String(i) })));
  await waitFor(() => rx.requests.length >= 300, 20_000, '300 deliveries');
  assert.deepEqual(rx.overlaps, [], 'no webhook-id was being received twice at the same time');
  assert.equal(new Set(rx.requests.map((r) => r.headers['webhook-id'])).size, 300);
  assert.equal(rx.requests.length, 300, 'and none was sent twice at all');
  await waitFor(async () => (await a.store.listDeliveries(ep.id, { status: 'delivered', limit: 300 })).length === 300);
  for (const d of await a.store.listDeliveries(ep.id, { limit: 300 })) {
    assert.equal((await a.store.getDelivery(d.id))!.attempts.length, 1);
  }
  assert.equal(rx.maxInFlight > 8, true, 'both nodes were sending');
});

test('after SIGKILL the restarted process takes back the dead one\'s leases at once, not when they run out', async (t) => {
  const rx = await slowReceiver(t, 5);
  // The default lease (60 s): without taking the leases back, the restart would wait that long.
  const config = { allowPrivateTargets: true, sweepIntervalSeconds: 0.1 };
  const first = await spawnHerald({ outbound: config });
  const ep = await postJson(`${first.url}/v1/endpoints`, { url: rx.url, channels: ['burst'], maxConcurrency: 4 });
  assert.equal(ep.status, 201);
  const r = await postJson(`${first.url}/v1/publish`, Array.from({ length: 300 }, (_, i) => ({ channel: 'burst', data: i })));
  assert.equal(r.status, 201);
  await waitFor(() => rx.requests.length >= 20, 20_000, 'some deliveries before the kill');
  await first.kill();
  const ids = () => new Set(rx.requests.map((q) => q.headers['webhook-id'])).size;
  assert.ok(ids() < 300, 'the kill came mid-burst');
  const second = await spawnHerald({ outbound: config }, { dataDir: first.dataDir });
  t.after(() => second.stop());
  // Half a lease: what the killed process held must not wait for its leases to run out.
  await waitFor(() => ids() === 300, 30_000, 'all 300 events within half a lease');
  assert.ok(
    second.logs.some((l) => l.msg === 'outbound webhooks: took back the leases of a stopped process'),
    'the restart says it took the leases back',
  );
  // The killed process held the planner lease too: the restart plans at once instead of after it runs out.
  assert.ok(
    second.logs.some((l) => l.msg === 'outbound webhooks: took back the planner lease of a stopped process'),
    'the restart says it took the planner lease back',
  );
});
