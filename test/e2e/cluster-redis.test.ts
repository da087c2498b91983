import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openEventSource, openWs } from '../helpers/clients.js';
import { postJson, spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { needRedis, redisAvailable, uniquePrefix } from '../helpers/redis.js';
import { send, stripeRequest } from '../helpers/webhook-signers.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

/**
 * Three Herald processes on their own ports sharing one Redis, as a deployment behind a load
 * balancer runs them: one log, one order, the same ids on every node; resume anywhere;
 * idempotency, inbound de-dup, outbound leases and presence across nodes; a node killed
 * mid-stream.
 */

const STRIPE_SECRET = 'whsec_cluster_test_secret';
/** ms to wait for an event to reach every node (Redis on loopback answers in well under one). */
const SPREAD_MS = 10_000;

let nodes: SpawnedHerald[] = [];
let redisUrl: string | undefined;

function nodeConfig(keyPrefix: string) {
  return {
    backend: { type: 'redis', url: redisUrl, keyPrefix },
    log: { level: 'info' },
    presence: { channels: ['room.*'], leaveDelaySeconds: 0 },
    outbound: { allowPrivateTargets: true, retryScheduleSeconds: [1] },
    sources: { shop: { provider: 'stripe', secret: STRIPE_SECRET, channel: 'orders' } },
  };
}

async function publish(node: SpawnedHerald, channel: string, data: unknown, idempotencyKey?: string) {
  const r = await postJson(`${node.url}/v1/publish`, { channel, type: 'message', data, idempotencyKey });
  assert.equal(r.status, 201, r.text);
  return { id: r.json.id as string, replayed: r.headers.get('idempotent-replayed') === 'true' };
}

describe('three nodes on one Redis', () => {
  let keyPrefix = '';
  before(async () => {
    redisUrl = await redisAvailable();
    if (!redisUrl) return;
    keyPrefix = uniquePrefix('cluster').slice(1, -2); // the config key takes the name inside the braces
    nodes = await Promise.all([0, 1, 2].map(() => spawnHerald(nodeConfig(keyPrefix))));
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  test('a publish on any node reaches SSE and WebSocket subscribers on all three, in the same order with the same ids', async (t) => {
    if (!(await needRedis(t))) return;
    const sse = nodes.map((n) => openEventSource(`${n.url}/v1/stream?channel=fan.>`));
    const ws = await Promise.all(nodes.map((n) => openWs(`${n.url}/v1/ws`)));
    try {
      await waitFor(() => sse.every((s) => s.opens > 0), SPREAD_MS, 'every SSE stream to open');
      for (const w of ws) {
        w.send({ op: 'subscribe', channel: 'fan.>', ref: 1 });
        await w.next((f) => f.op === 'ack' && f.ref === 1);
      }
      // Publishes on all three nodes at once: the log decides one order.
      const ids: string[] = [];
      await Promise.all(
        nodes.map(async (n, i) => {
          for (let k = 0; k < 20; k++) ids.push((await publish(n, `fan.n${i}`, { i, k })).id);
        }),
      );
      for (const s of sse) await s.until(60, SPREAD_MS);
      for (const w of ws) await waitFor(() => w.events().length >= 60, SPREAD_MS, '60 WebSocket events');
      const reference = sse[0]!.messages.map((m) => m.lastEventId);
      assert.deepEqual([...reference].sort(), [...ids].sort(), 'every acknowledged publish, once');
      for (const s of sse) assert.deepEqual(s.messages.map((m) => m.lastEventId), reference, 'SSE: same ids, same order');
      for (const w of ws) assert.deepEqual(w.events().map((f) => f.id), reference, 'WebSocket: same ids, same order');
    } finally {
      for (const s of sse) s.close();
      for (const w of ws) w.close();
    }
  });

  test('a client resumes on another node across two channels with no gap and no duplicate', async (t) => {
    if (!(await needRedis(t))) return;
    const [a, b, c] = nodes as [SpawnedHerald, SpawnedHerald, SpawnedHerald];
    const first = openEventSource(`${a.url}/v1/stream?channel=res.x&channel=res.y`);
    await waitFor(() => first.opens > 0, SPREAD_MS, 'the stream on node A');
    const sent: string[] = [];
    for (let k = 0; k < 10; k++) sent.push((await publish(k % 2 ? b : c, k % 3 ? 'res.x' : 'res.y', k)).id);
    await first.until(10, SPREAD_MS);
    first.close();
    const last = first.messages.at(-1)!.lastEventId;
    for (let k = 10; k < 20; k++) sent.push((await publish(k % 2 ? a : c, k % 3 ? 'res.x' : 'res.y', k)).id);
    const resumed = openEventSource(`${b.url}/v1/stream?channel=res.x&channel=res.y`, ['message'], { 'Last-Event-ID': last });
    try {
      await resumed.until(10, SPREAD_MS);
      assert.deepEqual([...first.messages, ...resumed.messages].map((m) => m.lastEventId), sent);
      // The WebSocket `since` of node C says the same.
      const ws = await openWs(`${c.url}/v1/ws`);
      ws.send({ op: 'subscribe', channel: 'res.*', since: last });
      await waitFor(() => ws.events().length >= 10, SPREAD_MS, 'the WebSocket replay');
      assert.deepEqual(ws.events().map((f) => f.id), sent.slice(10));
      ws.close();
    } finally {
      resumed.close();
    }
  });

  test('an idempotency key and a provider retry hold across nodes: published once', async (t) => {
    if (!(await needRedis(t))) return;
    const [a, b, c] = nodes as [SpawnedHerald, SpawnedHerald, SpawnedHerald];
    const one = await publish(a, 'idem', 1, 'order-42');
    const two = await publish(b, 'idem', 1, 'order-42');
    assert.equal(one.replayed, false);
    assert.equal(two.id, one.id, 'the retry on another node gets the first id back');
    assert.equal(two.replayed, true);
    const req = stripeRequest({ id: 'evt_cluster_1', object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_1' } } }, STRIPE_SECRET);
    const r1 = await send(`${a.url}/v1/webhooks/shop`, req);
    const r2 = await send(`${c.url}/v1/webhooks/shop`, req);
    assert.equal(r1.status, 200);
    assert.equal(r2.status, 200);
    assert.equal(r2.json.duplicate, true);
    assert.equal(r2.json.id, r1.json.id);
    const history = await fetch(`${b.url}/v1/events?channel=orders`).then((r) => r.json() as Promise<{ events: { data: { id: string } }[] }>);
    assert.equal(history.events.filter((e) => e.data.id === 'evt_cluster_1').length, 1);
  });

  test('outbound: one request per attempt across nodes, and an endpoint made on one node is used by all', async (t) => {
    if (!(await needRedis(t))) return;
    const receiver = await startReceiver();
    try {
      const made = await postJson(`${nodes[1]!.url}/v1/endpoints`, { url: receiver.url, channels: ['out.>'] });
      assert.equal(made.status, 201, made.text);
      // Every node sees the endpoint within a second or so; then publish on all of them.
      for (const n of nodes) {
        await waitFor(async () => (await fetch(`${n.url}/v1/endpoints/${made.json.id}`)).status === 200, 5_000, 'the endpoint on every node');
      }
      const ids: string[] = [];
      await Promise.all(nodes.map(async (n, i) => { for (let k = 0; k < 30; k++) ids.push((await publish(n, `out.n${i}`, k)).id); }));
      await waitFor(() => receiver.requests.length >= ids.length, 20_000, `${ids.length} webhooks`);
      await new Promise((r) => setTimeout(r, 1_500)); // a second send would come now
      const webhookIds = receiver.requests.map((r) => String(r.headers['webhook-id']));
      assert.equal(new Set(webhookIds).size, ids.length, 'each event sent once');
      assert.equal(webhookIds.length, ids.length, 'no attempt sent twice');
      assert.deepEqual(receiver.overlaps, []);
    } finally {
      await receiver.close();
    }
  });

  test('presence is the union of every node', async (t) => {
    if (!(await needRedis(t))) return;
    const [a, b] = nodes as [SpawnedHerald, SpawnedHerald];
    const subs = [
      openEventSource(`${a.url}/v1/stream?channel=room.1`),
      openEventSource(`${b.url}/v1/stream?channel=room.1`),
    ];
    try {
      await waitFor(() => subs.every((s) => s.opens > 0), SPREAD_MS, 'both streams');
      for (const n of nodes) {
        await waitFor(
          async () => {
            const p = (await fetch(`${n.url}/v1/channels/room.1/presence`).then((r) => r.json())) as { anonymous: number };
            return p.anonymous === 2;
          },
          SPREAD_MS,
          'two connections in the presence of every node',
        );
      }
    } finally {
      for (const s of subs) s.close();
    }
  });

  test('a node killed with SIGKILL mid-stream: its clients resume on another node with no gap and no duplicate', async (t) => {
    if (!(await needRedis(t))) return;
    const doomed = await spawnHerald(nodeConfig(keyPrefix));
    const [a, b] = nodes as [SpawnedHerald, SpawnedHerald];
    const onDoomed = openEventSource(`${doomed.url}/v1/stream?channel=kill`);
    await waitFor(() => onDoomed.opens > 0, SPREAD_MS, 'the stream on the doomed node');
    const sent: string[] = [];
    let stop = false;
    const publisher = (async () => {
      for (let k = 0; k < 400 && !stop; k++) {
        sent.push((await publish(k % 2 ? a : b, 'kill', k)).id);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await onDoomed.until(50, SPREAD_MS);
    await doomed.kill();
    onDoomed.close();
    const last = onDoomed.messages.at(-1)!.lastEventId;
    const resumed = openEventSource(`${a.url}/v1/stream?channel=kill`, ['message'], { 'Last-Event-ID': last });
    try {
      await publisher;
      stop = true;
      const seen = () => [...onDoomed.messages, ...resumed.messages].map((m) => m.lastEventId);
      await waitFor(() => seen().length >= sent.length, SPREAD_MS, `${sent.length} events across the kill`);
      assert.deepEqual(seen(), sent);
    } finally {
      stop = true;
      resumed.close();
    }
  });
});
