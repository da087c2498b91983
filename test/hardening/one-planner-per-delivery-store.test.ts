import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { buildConfig } from '../../src/config/load.js';
import { PLANNER_LEASE } from '../../src/transports/webhook-out/planner-lease.js';
import { waitFor } from '../helpers/herald.js';
import { outboundNodesOnOneFile } from '../helpers/outbound-nodes.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

/**
 * Two planners of one delivery store would turn every event into two deliveries: nodes sharing a
 * store plan through the `planner` lease, so exactly one plans, and another takes over when it
 * stops (given back at once on a graceful stop, run out when the holder lost its backend).
 */

// A short planner lease, so a take-over after expiry happens within the test (renewed every 0.2 s).
const config = buildConfig({ outbound: { allowPrivateTargets: true, sweepIntervalSeconds: 0.1, plannerLeaseSeconds: 0.6 } }, {});

async function setup(t: TestContext) {
  const { hub, node } = outboundNodesOnOneFile(t, config.outbound, 'herald-planner-');
  const rx: Receiver = await startReceiver();
  t.after(() => rx.close());
  const publish = (from: number, n: number) =>
    hub.publish(Array.from({ length: n }, (_, i) => ({ channel: 'x', type: 'message', data: String(from + i) })));
  /** Every webhook-id the receiver got, and how often. */
  const received = () => {
    const counts = new Map<string, number>();
    for (const r of rx.requests) counts.set(String(r.headers['webhook-id']), (counts.get(String(r.headers['webhook-id'])) ?? 0) + 1);
    return counts;
  };
  return { hub, rx, node, publish, received };
}

test('two nodes on one delivery store: only the holder of the planner lease plans, each event is one delivery', async (t) => {
  const { rx, node, publish, received } = await setup(t);
  const a = await node();
  const b = await node();
  const ep = await a.outbound.createEndpoint({ url: rx.url, channels: ['>'] });
  await b.outbound.registry.load(); // b learns of the endpoint a created
  await publish(0, 100);
  await waitFor(() => received().size >= 100, 20_000, '100 events delivered');
  const rows = await a.outbound.store.listDeliveries(ep.id, { limit: 1_000 });
  assert.equal(rows.length, 100, 'one delivery per event, not one per node');
  assert.deepEqual([...received().values()].filter((n) => n > 1), [], 'no event was sent twice');
});

test('the planner lease is handed over: at once when its holder stops, at expiry when it lost its backend', async (t) => {
  const { rx, node, publish, received } = await setup(t);
  const a = await node();
  const b = await node();
  const c = await node();
  await a.outbound.createEndpoint({ url: rx.url, channels: ['>'] });
  await b.outbound.registry.load();
  await c.outbound.registry.load();
  await publish(0, 20);
  await waitFor(() => received().size >= 20, 20_000, 'the first 20 events');

  // A graceful stop gives the lease back: b or c plans what is published next.
  await a.outbound.close();
  await publish(20, 20);
  await waitFor(() => received().size >= 40, 20_000, 'events published after the first planner stopped');

  // The new holder loses its database (its connection closes, as when a node loses its backend):
  // it can neither plan nor give the lease back, and the other node takes over once it runs out.
  const holder = (await c.outbound.store.leaseHolder(PLANNER_LEASE, Date.now()))!.owner;
  const [gone, left] = b.outbound.owner === holder ? [b, c] : [c, b];
  assert.equal(gone.outbound.owner, holder, 'b or c holds the lease');
  gone.db.close();
  await publish(40, 20);
  await waitFor(() => received().size >= 60, 20_000, 'events published after the planner lost its backend');
  assert.notEqual((await left.outbound.store.leaseHolder(PLANNER_LEASE, Date.now()))?.owner, holder);
  assert.deepEqual([...received().values()].filter((n) => n > 1), [], 'no event was sent twice');
});
