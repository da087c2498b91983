import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Redis } from 'ioredis';
import { test, type TestContext } from 'node:test';
import { NODE_EXPIRY_MS, NODE_HEARTBEAT_MS } from '../../src/core/nodes.js';
import { postJson, spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { deletePrefix, needRedis, uniquePrefix } from '../helpers/redis.js';

// `GET /v1/nodes`: every node of a deployment writes a heartbeat record to the backend it shares
// with the others, so any of them lists them all, with their connections and lag; a node that
// stops beating leaves the list once its record expires.

const ADMIN = 'nodes-test-admin-key-00001';
const READER = 'nodes-test-reader-key-0001';
const auth = {
  apiKeys: [
    { key: ADMIN, name: 'ops', scopes: ['admin'] },
    { key: READER, name: 'app', scopes: ['subscribe:feed.>', 'publish:feed.>'] },
  ],
};
const admin = { authorization: `Bearer ${ADMIN}` };
/** milliseconds for `--workers 2` to listen: each worker loads all of Herald, both at once on a busy machine. */
const WORKERS_START_TIMEOUT_MS = 45_000;

interface NodeView {
  id: string;
  self: boolean;
  pid: number;
  host: string;
  connections: number;
  connectionsByTransport: Record<string, number>;
  subscriptions: number;
  published: number;
  delivered: number;
  lag: { headSeq: number; dispatchedSeq: number; events: number };
}

/**
 * milliseconds before a request is given up: with `--workers`, a connection the primary hands to
 * a worker at the moment it is killed is never answered.
 */
const REQUEST_TIMEOUT_MS = 3_000;

/** GET /v1/nodes on a connection of its own (with `--workers`, whichever worker takes it answers). */
function nodes(base: string, headers: Record<string, string> = admin): Promise<{ status: number; json: any; worker: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/nodes`, { agent: false, headers, timeout: REQUEST_TIMEOUT_MS });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text), worker: String(res.headers['herald-worker']) }));
    });
    req.end();
  });
}

/** An SSE stream on a connection of its own; resolves once it is open, with the worker serving it. */
function openSse(t: TestContext, base: string, channel: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v1/stream?channel=${channel}`, { agent: false, headers: admin });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.on('response', (res) => {
      assert.equal(res.statusCode, 200);
      res.on('error', () => undefined);
      res.resume();
      resolve(String(res.headers['herald-worker']));
    });
    req.end();
    t.after(() => req.destroy());
  });
}

/** Waits (a few heartbeats at most) until `GET /v1/nodes` on `base` satisfies `check`. */
async function nodesWhere(base: string, check: (list: NodeView[]) => boolean, what: string): Promise<NodeView[]> {
  let last: NodeView[] = [];
  try {
    return (await waitFor(
      async () => {
        // A connection lost to a worker that was just killed: asked again.
        const r = await nodes(base).catch(() => undefined);
        if (!r) return undefined;
        assert.equal(r.status, 200);
        last = r.json.nodes as NodeView[];
        return check(last) ? last : undefined;
      },
      NODE_EXPIRY_MS + 3 * NODE_HEARTBEAT_MS,
      what,
    ))!;
  } catch (err) {
    throw new Error(`${(err as Error).message}; last answer: ${JSON.stringify(last)}`);
  }
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
  const config = { auth, backend: { type: 'redis', url, keyPrefix: prefix.slice(1, -2) } };
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
});

test('herald --workers 2 on SQLite: each worker lists both; a killed worker leaves and its replacement joins', async (t) => {
  const h = await spawnHerald({ auth }, { args: ['--workers', '2'], startTimeoutMs: WORKERS_START_TIMEOUT_MS });
  t.after(() => h.stop());

  // Streams until both workers serve one (the primary hands connections round-robin).
  const served: string[] = [];
  for (let i = 0; i < 8 && new Set(served).size < 2; i++) served.push(await openSse(t, h.url, 'feed.one'));
  assert.deepEqual(new Set(served), new Set(['1', '2']));
  const total = served.length;

  const both = (list: NodeView[]) => list.length === 2 && list.reduce((sum, n) => sum + (n.connectionsByTransport.sse ?? 0), 0) === total;
  // Each worker answers with the same two nodes, itself marked (the other as of its last beat).
  const seenBy = new Set<number>();
  let list: NodeView[] = [];
  await waitFor(
    async () => {
      const answer = (await nodes(h.url)).json.nodes as NodeView[];
      assert.equal(answer.filter((n) => n.self).length, 1);
      if (both(answer)) {
        list = answer;
        seenBy.add(answer.find((n) => n.self)!.pid);
      }
      return seenBy.size === 2;
    },
    NODE_EXPIRY_MS + 3 * NODE_HEARTBEAT_MS,
    'each worker to list both with every stream',
  );
  assert.equal(seenBy.size, 2, 'both workers answered');
  const pids = list.map((n) => n.pid);
  assert.equal(new Set(pids).size, 2);
  assert.ok(!pids.includes(h.child.pid!), 'the primary serves no clients and is no node');
  assert.ok(list.every((n) => n.connections >= 1), 'each worker counts its own streams');

  // A worker killed: its record expires; the primary forks a replacement, which joins.
  const victim = pids[0]!;
  process.kill(victim, 'SIGKILL');
  const after = await nodesWhere(h.url, (l) => l.length === 2 && !l.some((n) => n.pid === victim), 'the killed worker replaced in the list');
  assert.ok(after.some((n) => n.pid === pids[1]));
});
