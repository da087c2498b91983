import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type Database from 'better-sqlite3';
import { buildConfig } from '../../src/config/load.js';
import { PLANNER_IDLE_CURSOR_MS } from '../../src/transports/webhook-out/delivery-planner.js';
import { waitFor } from '../helpers/herald.js';
import { outboundNodesOnOneFile } from '../helpers/outbound-nodes.js';

/**
 * A deployment without outbound endpoints (SSE and WebSocket only) must not pay a second write
 * per publish for the outbound planner's cursor: with no endpoint, the stored cursor may lag by
 * up to PLANNER_IDLE_CURSOR_MS. What that lag must never cost: an event owed to an endpoint, or
 * history a replay should reach, on any node.
 */

const config = buildConfig({ outbound: { allowPrivateTargets: true, send: false } }, {});

async function setup(t: TestContext) {
  const { hub, node } = outboundNodesOnOneFile(t, config.outbound, 'herald-planner-cursor-');
  /** Publishes one event at a time, each waited for, as separate publish requests are. */
  const publishOneByOne = async (n: number) => {
    for (let i = 0; i < n; i++) await hub.publish([{ channel: 'x', type: 'message', data: String(i) }]);
  };
  const changes = (db: Database.Database) => (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
  return { hub, node, publishOneByOne, changes };
}

test('with no endpoint, planning 100 publishes is not a write per publish, and the stored cursor catches up', async (t) => {
  const { hub, node, publishOneByOne, changes } = await setup(t);
  const a = await node();
  const before = changes(a.db);
  await publishOneByOne(100);
  // The cursor is stored with the first batch past PLANNER_IDLE_CURSOR_MS: once it is at the
  // head, the planner has planned all 101 events, and every write it made is counted.
  await new Promise((r) => setTimeout(r, PLANNER_IDLE_CURSOR_MS + 100));
  await publishOneByOne(1);
  const head = (await hub.head()).lastSeq;
  await waitFor(async () => (await a.outbound.store.plannedThrough()) === head, 5_000, 'the stored cursor at the head');
  const written = changes(a.db) - before;
  assert.ok(written <= 5, `the delivery store wrote ${written} rows for 101 publishes without an endpoint (one per publish before)`);
});

test('an endpoint created while the stored cursor lags: a replay on another node reaches up to it, and the planner sends each later event once', async (t) => {
  const { hub, node, publishOneByOne } = await setup(t);
  const a = await node(); // holds the planner lease
  const b = await node();
  await publishOneByOne(20);
  const stored = (await a.outbound.store.plannedThrough()) ?? 0;
  assert.ok(stored < 20, `the stored cursor lags while no endpoint exists (at ${stored} of 20)`);
  // Created on the node that does not plan: it starts after the log's head.
  const ep = await b.outbound.createEndpoint({ url: 'https://example.com/hook', channels: ['x'] });
  assert.equal(ep.fromSeq, (await hub.head()).lastSeq);
  // The history, replayed from that node before anything new was planned: events 1-20.
  const r = await b.outbound.replay(ep.id, 0);
  assert.equal(r.queued, 20, JSON.stringify(r));
  await publishOneByOne(5);
  const seqs = async () => (await a.outbound.store.listDeliveries(ep.id, { limit: 100 })).map((d) => d.eventSeq).sort((x, y) => x - y);
  await waitFor(async () => (await seqs()).length >= 25, 5_000, '25 deliveries');
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(await seqs(), Array.from({ length: 25 }, (_, i) => i + 1), 'events 1-20 by the replay, 21-25 by the planner, each once');
});
