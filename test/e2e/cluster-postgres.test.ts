import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openEventSource, openWs } from '../helpers/clients.js';
import { postJson, seqOfId, spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { needPostgres, ownPostgres, testDatabase } from '../helpers/postgres.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

/**
 * Herald nodes on Postgres alone (no Redis): one log in one schema, ids in commit order, the
 * nodes woken by LISTEN/NOTIFY and polling; resume on any node; one outbound request per
 * attempt; and Postgres stopped as by a crash and started again in the middle of a publish stream.
 */

/** ms to wait for an event to reach every node (a lost notification costs one poll, 1 s). */
const SPREAD_MS = 10_000;
/** ms the whole outage-and-recovery may take. */
const RECOVERY_MS = 60_000;

function nodeConfig(url: string) {
  return {
    backend: { type: 'postgres', url, schema: 'herald' },
    log: { level: 'info' },
    outbound: { allowPrivateTargets: true, retryScheduleSeconds: [1] },
  };
}

async function publish(node: SpawnedHerald, channel: string, data: unknown, idempotencyKey?: string) {
  const r = await postJson(`${node.url}/v1/publish`, { channel, type: 'message', data, idempotencyKey });
  assert.equal(r.status, 201, r.text);
  return { id: r.json.id as string, replayed: r.headers.get('idempotent-replayed') === 'true' };
}

test('two nodes on one Postgres: the same events in the same order, resume on the other node, idempotency, one webhook per attempt', async (t) => {
  if (!(await needPostgres(t))) return;
  const db = (await testDatabase(t))!;
  // Both start at once on an empty database: the migration runs once, under its lock.
  const nodes = await Promise.all([spawnHerald(nodeConfig(db.url)), spawnHerald(nodeConfig(db.url))]);
  t.after(() => Promise.all(nodes.map((n) => n.stop())));
  const [a, b] = nodes as [SpawnedHerald, SpawnedHerald];

  const sse = nodes.map((n) => openEventSource(`${n.url}/v1/stream?channel=pg.>`));
  const ws = await Promise.all(nodes.map((n) => openWs(`${n.url}/v1/ws`)));
  t.after(() => {
    for (const s of sse) s.close();
    for (const w of ws) w.close();
  });
  await waitFor(() => sse.every((s) => s.opens > 0), SPREAD_MS, 'both SSE streams');
  for (const w of ws) {
    w.send({ op: 'subscribe', channel: 'pg.>', ref: 1 });
    await w.next((f) => f.op === 'ack' && f.ref === 1);
  }
  const ids: string[] = [];
  await Promise.all(nodes.map(async (n, i) => { for (let k = 0; k < 20; k++) ids.push((await publish(n, `pg.n${i}`, k)).id); }));
  for (const s of sse) await s.until(40, SPREAD_MS);
  for (const w of ws) await waitFor(() => w.events().length >= 40, SPREAD_MS, '40 WebSocket events');
  const reference = sse[0]!.messages.map((m) => m.lastEventId);
  assert.deepEqual([...reference].sort(), [...ids].sort(), 'every acknowledged publish, once');
  assert.deepEqual(reference.map(seqOfId), [...reference.map(seqOfId)].sort((x, y) => x - y), 'in log order');
  for (const s of sse) assert.deepEqual(s.messages.map((m) => m.lastEventId), reference);
  for (const w of ws) assert.deepEqual(w.events().map((f) => f.id), reference);

  // Resume on the other node from an id in the middle.
  const resumed = openEventSource(`${b.url}/v1/stream?channel=pg.>`, ['message'], { 'Last-Event-ID': reference[9]! });
  t.after(() => resumed.close());
  await resumed.until(30, SPREAD_MS);
  assert.deepEqual(resumed.messages.map((m) => m.lastEventId), reference.slice(10));

  // An idempotency key holds across nodes.
  const one = await publish(a, 'pg.idem', 1, 'pg-order-42');
  const two = await publish(b, 'pg.idem', 1, 'pg-order-42');
  assert.equal(two.id, one.id);
  assert.equal(two.replayed, true);

  // One outbound request per attempt, whichever node planned or sent it.
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const made = await postJson(`${a.url}/v1/endpoints`, { url: receiver.url, channels: ['out.>'] });
  assert.equal(made.status, 201, made.text);
  for (const n of nodes) {
    await waitFor(async () => (await fetch(`${n.url}/v1/endpoints/${made.json.id}`)).status === 200, 5_000, 'the endpoint on both nodes');
  }
  const sent: string[] = [];
  await Promise.all(nodes.map(async (n, i) => { for (let k = 0; k < 20; k++) sent.push((await publish(n, `out.n${i}`, k)).id); }));
  await waitFor(() => receiver.requests.length >= sent.length, 20_000, `${sent.length} webhooks`);
  await new Promise((r) => setTimeout(r, 1_500)); // a second send would come now
  const webhookIds = receiver.requests.map((r) => String(r.headers['webhook-id']));
  assert.equal(new Set(webhookIds).size, sent.length, 'each event sent once');
  assert.equal(webhookIds.length, sent.length, 'no attempt sent twice');
});

test('Postgres stopped and started again mid-stream: 503 while it is gone, then every acknowledged event at every subscriber, none twice', async (t) => {
  const own = await ownPostgres(t);
  if (!own) return;
  const config = nodeConfig(own.url);
  const nodes = [await spawnHerald(config), await spawnHerald(config)];
  t.after(() => Promise.all(nodes.map((n) => n.stop())));
  const [a, b] = nodes as [SpawnedHerald, SpawnedHerald];
  const sse = openEventSource(`${b.url}/v1/stream?channel=r`);
  const ws = await openWs(`${a.url}/v1/ws`);
  t.after(() => {
    sse.close();
    ws.close();
  });
  ws.send({ op: 'subscribe', channel: 'r', ref: 1 });
  await ws.next((f) => f.op === 'ack' && f.ref === 1);
  await waitFor(() => sse.opens > 0, 5_000, 'the SSE stream');

  const acked: string[] = [];
  const refusals: { status: number; code: string }[] = [];
  let stop = false;
  t.after(() => {
    stop = true;
  });
  const publisher = (async () => {
    for (let k = 0; !stop && k < 20_000; k++) {
      const r = await postJson(`${(k % 2 ? a : b).url}/v1/publish`, { channel: 'r', type: 'message', data: k }).catch(() => undefined);
      if (r?.status === 201) acked.push(r.json.id as string);
      else if (r) {
        refusals.push({ status: r.status, code: r.json?.error?.code });
        await new Promise((res) => setTimeout(res, 50));
      }
      await new Promise((res) => setTimeout(res, 2));
    }
  })();

  await waitFor(() => acked.length >= 50, RECOVERY_MS, '50 acknowledged publishes');
  own.stop(); // -m immediate: as a crash; what was committed is in the WAL
  for (const n of nodes) {
    await waitFor(async () => (await fetch(`${n.url}/readyz`)).status === 503, RECOVERY_MS, 'readyz 503 while Postgres is gone');
  }
  await waitFor(() => refusals.length >= 3, RECOVERY_MS, 'publishes refused during the outage');
  const ackedBefore = acked.length;
  own.start();
  for (const n of nodes) {
    await waitFor(async () => (await fetch(`${n.url}/readyz`)).status === 200, RECOVERY_MS, 'readyz 200 once Postgres is back');
  }
  await waitFor(() => acked.length >= ackedBefore + 50, RECOVERY_MS, '50 more acknowledged publishes after the restart');
  stop = true;
  await publisher;

  for (const r of refusals) assert.deepEqual(r, { status: 503, code: 'BACKEND_UNAVAILABLE' });
  const last = acked.reduce((m, id) => (seqOfId(id) > seqOfId(m) ? id : m));
  const seenBy = { sse: () => sse.messages.map((m) => m.lastEventId), ws: () => ws.events().map((f) => f.id as string) };
  for (const [name, seen] of Object.entries(seenBy)) {
    await waitFor(() => seen().includes(last), RECOVERY_MS, `${name}: the last acknowledged event`);
    const got = seen();
    const seqs = got.map(seqOfId);
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), `${name}: in log order, none twice`);
    assert.deepEqual(acked.filter((id) => !got.includes(id)), [], `${name}: every acknowledged event arrived`);
    // A publish cut off by the crash may have committed though its publisher got an error.
    assert.ok(got.length - acked.length <= nodes.length, `${name}: ${got.length - acked.length} events beyond the acknowledged ones`);
  }
  assert.equal(sse.opens, 1, 'the stream stayed open through the outage');
});
