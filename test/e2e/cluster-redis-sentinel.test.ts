import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { test, type TestContext } from 'node:test';
import { parseRedisUrl } from '../../src/stores/redis-url.js';
import { openEventSource, openWs } from '../helpers/clients.js';
import { seqOfId, spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import {
  needRedisSentinel,
  restoreRedisSentinel,
  restoreRedisSentinelAsync,
  sentinelPrimary,
  sentinelReplicas,
  uniquePrefix,
} from '../helpers/redis.js';

/**
 * Two Herald processes on a Redis Sentinel set (`redis+sentinel://`), the primary killed with
 * SIGKILL under a stream of publishes: the nodes follow the promoted replica by themselves,
 * refuse publishes with 503 meanwhile (never hang, never acknowledge what was not stored), and
 * every acknowledged event reaches every subscriber once, in log order. Without `waitReplicas`,
 * a write the old primary acknowledged but never replicated is lost: clients holding its id get
 * the `epoch_changed` reset, never another event under that id. The set is restored after each
 * case, so the file can run twice in a row.
 */

/** ms the failover and the recovery after it may take before the test fails. */
const FAILOVER_MS = 30_000;
/** ms a publish may take before it counts as a hang (a refused one is answered at once). */
const PUBLISH_HANG_MS = 5_000;
/** ms to wait for an event to reach a subscriber. */
const SPREAD_MS = 10_000;

interface Outcome {
  node: number;
  status: number;
  id?: string;
  code?: string;
  k: number;
}

async function publish(node: SpawnedHerald, channel: string, k: number): Promise<Omit<Outcome, 'node' | 'k'>> {
  try {
    const res = await fetch(`${node.url}/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel, type: 'message', data: k }),
      signal: AbortSignal.timeout(PUBLISH_HANG_MS),
    });
    const json = (await res.json().catch(() => undefined)) as { id?: string; error?: { code: string } } | undefined;
    return { status: res.status, id: json?.id, code: json?.error?.code };
  } catch (err) {
    return { status: 0, code: (err as Error).name === 'TimeoutError' ? 'HANG' : (err as Error).message };
  }
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/** A client on whichever node the sentinels name primary now (for reading the log as stored). */
function sentinelClient(t: TestContext, url: string): Redis {
  const redis = new Redis({ ...parseRedisUrl(url), maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  t.after(() => redis.disconnect());
  return redis;
}

async function readyz(node: SpawnedHerald): Promise<number> {
  return (await fetch(`${node.url}/readyz`).catch(() => undefined))?.status ?? 0;
}

/** Stops the nodes and brings the set back to a primary and its replica, whatever the test did. */
function cleanup(t: TestContext, nodes: SpawnedHerald[], stopped: number[] = []): void {
  t.after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    for (const pid of stopped) if (!processGone(pid)) process.kill(pid, 'SIGCONT');
    restoreRedisSentinel();
  });
}

test('the Redis primary killed under two nodes with waitReplicas 1: 503 meanwhile, then every acknowledged event at every subscriber once, in order', async (t) => {
  const url = await needRedisSentinel(t);
  if (!url) return;
  const keyPrefix = uniquePrefix('sentinel').slice(1, -2);
  const config = { backend: { type: 'redis', url, keyPrefix, waitReplicas: 1, waitTimeoutSeconds: 1 }, log: { level: 'info' } };
  const nodes = [await spawnHerald(config), await spawnHerald(config)];
  cleanup(t, nodes);
  const [a, b] = nodes as [SpawnedHerald, SpawnedHerald];

  const sse = [openEventSource(`${a.url}/v1/stream?channel=f`), openEventSource(`${b.url}/v1/stream?channel=f`)];
  const ws = [await openWs(`${a.url}/v1/ws`), await openWs(`${b.url}/v1/ws`)];
  for (const w of ws) {
    w.send({ op: 'subscribe', channel: 'f', ref: 1 });
    await w.next((f) => f.op === 'ack' && f.ref === 1);
  }
  await waitFor(() => sse.every((s) => s.opens > 0), SPREAD_MS, 'the SSE streams');

  const outcomes: Outcome[] = [];
  let stop = false;
  // As a load balancer does: no publishes while the nodes say they are not ready.
  let outOfRotation = false;
  const publisher = (async () => {
    for (let k = 0; !stop; k++) {
      if (outOfRotation) {
        await new Promise((res) => setTimeout(res, 20));
        continue;
      }
      const node = k % 2;
      const r = await publish(nodes[node]!, 'f', k);
      outcomes.push({ node, k, ...r });
      await new Promise((res) => setTimeout(res, r.status === 201 ? 2 : 20));
    }
  })();
  const acked = () => outcomes.filter((o) => o.status === 201);

  await waitFor(() => acked().length >= 100, FAILOVER_MS, '100 acknowledged publishes');
  const primary = sentinelPrimary();
  process.kill(primary.pid, 'SIGKILL');
  await waitFor(() => processGone(primary.pid), 5_000, 'the primary to die');
  for (const n of nodes) await waitFor(async () => (await readyz(n)) === 503, FAILOVER_MS, 'readyz 503 while there is no primary');
  await waitFor(() => outcomes.some((o) => o.code === 'BACKEND_UNAVAILABLE'), FAILOVER_MS, 'a publish refused during the failover');
  // The promoted replica has no replica of its own until the killed node comes back: every
  // append is stored but not acknowledged (503), and the nodes stay not ready, until then. With
  // no publishes coming in, each node finds out by itself that writes succeed again.
  outOfRotation = true;
  await restoreRedisSentinelAsync();
  for (const n of nodes) await waitFor(async () => (await readyz(n)) === 200, FAILOVER_MS, 'readyz 200 once the set is whole');
  outOfRotation = false;
  const before = acked().length;
  await waitFor(() => acked().length >= before + 100, FAILOVER_MS, '100 more acknowledged publishes after the failover');
  stop = true;
  await publisher;

  const refused = outcomes.filter((o) => o.status !== 201);
  t.diagnostic(`${acked().length} acknowledged, ${refused.length} refused during the failover`);
  for (const o of refused) assert.deepEqual({ status: o.status, code: o.code }, { status: 503, code: 'BACKEND_UNAVAILABLE' }, 'refused with 503, never hung');
  assert.ok(
    acked().some((o) => seqOfId(o.id!) > seqOfId(acked()[before - 1]!.id!)),
    'the log went on after the failover',
  );

  // Every acknowledged event is in the log on the new primary, under its id's seq, as published.
  const redis = sentinelClient(t, url);
  const keyLog = `{${keyPrefix}}:log`;
  for (const o of acked()) {
    const seq = seqOfId(o.id!);
    const entry = (await redis.xrange(keyLog, `${seq}-0`, `${seq}-0`))[0];
    assert.ok(entry, `acknowledged event ${o.id} is in the log`);
    const fields = entry[1];
    assert.equal(fields[fields.indexOf('d') + 1], String(o.k), `the log holds what ${o.id} acknowledged`);
  }

  const last = acked().at(-1)!.id!;
  const subscribers = [
    ...sse.map((s, i) => ({ name: `SSE on node ${i}`, seen: () => s.messages.map((m) => ({ id: m.lastEventId, data: m.data })) })),
    ...ws.map((w, i) => ({ name: `WebSocket on node ${i}`, seen: () => w.events().map((f) => ({ id: f.id as string, data: JSON.stringify(f.data) })) })),
  ];
  const byId = new Map(acked().map((o) => [o.id!, o.k]));
  for (const s of subscribers) {
    await waitFor(() => s.seen().some((e) => e.id === last), SPREAD_MS, `${s.name}: the last acknowledged event`);
    const got = s.seen();
    const ids = got.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `${s.name}: no id twice`);
    const seqs = ids.map(seqOfId);
    assert.ok(seqs.every((q, i) => i === 0 || q > seqs[i - 1]!), `${s.name}: in log order`);
    assert.deepEqual([...byId.keys()].filter((id) => !ids.includes(id)), [], `${s.name}: every acknowledged event`);
    for (const e of got) if (byId.has(e.id)) assert.equal(e.data, String(byId.get(e.id)), `${s.name}: ${e.id} is the event acknowledged under it`);
  }
  for (const s of sse) {
    assert.equal(s.opens, 1, 'the stream stayed open through the failover');
    s.close();
  }
  for (const w of ws) w.close();
});

test('without waitReplicas, a write the old primary acknowledged but never replicated: its holders get epoch_changed, never another event under its id', async (t) => {
  const url = await needRedisSentinel(t);
  if (!url) return;
  const keyPrefix = uniquePrefix('sentinel-lost').slice(1, -2);
  const config = { backend: { type: 'redis', url, keyPrefix, waitReplicas: 0 }, log: { level: 'info' } };
  const nodes = [await spawnHerald(config), await spawnHerald(config)];
  const replica = sentinelReplicas()[0]!;
  cleanup(t, nodes, [replica.pid]);
  const [a, b] = nodes as [SpawnedHerald, SpawnedHerald];

  // A WebSocket on A (the node that appends the lost event), an SSE stream on B (which only
  // reads it from the stream).
  const sse = openEventSource(`${b.url}/v1/stream?channel=l`, ['message', 'herald.reset']);
  const ws = await openWs(`${a.url}/v1/ws`);
  ws.send({ op: 'subscribe', channel: 'l', ref: 1 });
  await ws.next((f) => f.op === 'ack' && f.ref === 1);
  await waitFor(() => sse.opens > 0, SPREAD_MS, 'the SSE stream');
  for (let k = 0; k < 5; k++) assert.equal((await publish(k % 2 ? a : b, 'l', k)).status, 201);

  // The replica stops reading and its link is cut: what the primary stores now reaches no replica.
  const primary = sentinelPrimary();
  process.kill(replica.pid, 'SIGSTOP');
  const admin = new Redis({ host: primary.host, port: primary.port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  admin.on('error', () => undefined);
  await admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
  admin.disconnect();
  const lost = await publish(a, 'l', 100);
  assert.equal(lost.status, 201);
  await waitFor(() => sse.messages.some((m) => m.lastEventId === lost.id), SPREAD_MS, 'the SSE stream on B to get the soon-lost event');
  await waitFor(() => ws.events().some((f) => f.id === lost.id), SPREAD_MS, 'the WebSocket on A to get the soon-lost event');

  process.kill(primary.pid, 'SIGKILL');
  await waitFor(() => processGone(primary.pid), 5_000, 'the primary to die');
  process.kill(replica.pid, 'SIGCONT');

  // B publishes first: its store never appended the lost event, only its stream handed it on.
  const after: string[] = [];
  await waitFor(
    async () => {
      const r = await publish(b, 'l', 200 + after.length);
      if (r.status === 201) after.push(r.id!);
      else assert.deepEqual({ status: r.status, code: r.code }, { status: 503, code: 'BACKEND_UNAVAILABLE' });
      return r.status === 201;
    },
    FAILOVER_MS,
    'a publish on B acknowledged by the promoted replica',
  );
  // Then on both (A may still be reconnecting: 503 until it is).
  for (let k = 1; k < 6; k++) {
    await waitFor(
      async () => {
        const r = await publish(k % 2 ? a : b, 'l', 200 + k);
        if (r.status === 201) after.push(r.id!);
        else assert.deepEqual({ status: r.status, code: r.code }, { status: 503, code: 'BACKEND_UNAVAILABLE' });
        return r.status === 201;
      },
      FAILOVER_MS,
      `publish ${k} after the failover`,
    );
  }
  assert.ok(!after.includes(lost.id!), `no other event acknowledged under the lost event's id ${lost.id}`);
  const lostEpoch = lost.id!.slice(0, lost.id!.lastIndexOf('-'));
  for (const id of after) assert.ok(!id.startsWith(`${lostEpoch}-`), `${id}: the log that lost an event has a new epoch`);

  // Both subscribers held the lost id: each gets the reset, then the new log.
  await waitFor(() => sse.messages.some((m) => m.type === 'herald.reset'), SPREAD_MS, 'the epoch_changed reset on the SSE stream');
  assert.equal(JSON.parse(sse.messages.find((m) => m.type === 'herald.reset')!.data).reason, 'epoch_changed');
  const wsReset = await ws.next((f) => f.op === 'reset', SPREAD_MS);
  assert.equal(wsReset.reason, 'epoch_changed');
  const last = after.at(-1)!;
  await waitFor(() => sse.messages.some((m) => m.lastEventId === last), SPREAD_MS, 'SSE: the new log');
  await waitFor(() => ws.events().some((f) => f.id === last), SPREAD_MS, 'WebSocket: the new log');

  // A client resuming from the lost id on either node gets the reset too.
  for (const n of nodes) {
    const resumed = openEventSource(`${n.url}/v1/stream?channel=l`, ['message', 'herald.reset'], { 'Last-Event-ID': lost.id! });
    await resumed.until(1, SPREAD_MS);
    assert.equal(resumed.messages[0]!.type, 'herald.reset');
    assert.equal(JSON.parse(resumed.messages[0]!.data).reason, 'epoch_changed');
    resumed.close();
  }
  sse.close();
  ws.close();
});
