import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { test, type TestContext } from 'node:test';
import { postJson, spawnHerald, type SpawnedHerald } from '../helpers/herald.js';
import { admin, auth, nodes, nodesWhere, openSse, READER, type NodeView } from '../helpers/nodes.js';
import { testDatabase } from '../helpers/postgres.js';
import { deletePrefix, needRedis, uniquePrefix } from '../helpers/redis.js';

// `GET /v1/nodes` on nodes sharing Redis or Postgres: every node writes a heartbeat record to the
// backend it shares with the others, so any of them lists them all, with their connections and
// lag; a node that stops beating leaves the list once its record expires.

/** Two nodes on one shared backend: either lists both with their connections and lag; a killed one expires. */
async function twoNodes(t: TestContext, backend: Record<string, unknown>): Promise<void> {
  const config = { auth, backend };
  const a = await spawnHerald(config);
  t.after(() => a.stop());
  const b: SpawnedHerald = await spawnHerald(config);
  t.after(() => b.stop());

  await openSse(t, b.url, 'feed.one');
  await openSse(t, b.url, 'feed.two');
  for (let i = 0; i < 3; i++) assert.equal((await postJson(`${a.url}/v1/publish`, { channel: 'feed.one', data: { i } }, admin)).status, 201);

  const both = (list: NodeView[]) => {
    const nb = list.find((n) => n.pid === b.child.pid);
    const na = list.find((n) => n.pid === a.child.pid);
    return list.length === 2 && nb?.connectionsByTransport.sse === 2 && na?.published === 3 && nb.delivered >= 3 && nb.lag.events === 0;
  };
  for (const [node, other] of [
    [a, b],
    [b, a],
  ] as const) {
    const list = await nodesWhere(node.url, both, `both nodes listed by ${node.child.pid}`);
    const self = list.find((n) => n.self)!;
    assert.equal(self.pid, node.child.pid, 'the node that answers is marked');
    assert.equal(list.filter((n) => n.self).length, 1);
    const o = list.find((n) => n.pid === other.child.pid)!;
    assert.equal(o.self, false);
    assert.equal(list.find((n) => n.pid === b.child.pid)!.connections, 2);
    assert.equal(list.find((n) => n.pid === a.child.pid)!.connections, 0);
    assert.equal(list.find((n) => n.pid === b.child.pid)!.subscriptions, 2);
    assert.ok(list.every((n) => n.lag.headSeq >= 3));
  }

  // Admin only, in the registry's error shape.
  const anonymous = await nodes(a.url, {});
  assert.equal(anonymous.status, 401);
  assert.equal(typeof anonymous.json.error.code, 'string');
  const reader = await nodes(a.url, { authorization: `Bearer ${READER}` });
  assert.equal(reader.status, 403);
  assert.equal(typeof reader.json.error.code, 'string');

  // No shutdown path: its record stops being renewed, and expires.
  await b.kill();
  const left = await nodesWhere(a.url, (list) => list.length === 1, 'the killed node to leave the list');
  assert.equal(left[0]!.pid, a.child.pid);
}

test('two nodes on one Redis: either lists both with their connections and lag; a killed node leaves after expiry', async (t) => {
  const url = await needRedis(t);
  if (!url) return;
  const prefix = uniquePrefix('nodes');
  const redis = new Redis(url);
  t.after(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  await twoNodes(t, { type: 'redis', url, keyPrefix: prefix.slice(1, -2) });
});

test('two nodes on one Postgres: either lists both with their connections and lag; a killed node leaves after expiry', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  // The first node migrates the schema (the node table with it) before the second starts.
  await twoNodes(t, { type: 'postgres', url: db.url, schema: 'herald' });
});
