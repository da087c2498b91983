import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NODE_EXPIRY_MS, NODE_HEARTBEAT_MS } from '../../src/core/nodes.js';
import { spawnHerald, waitFor } from '../helpers/herald.js';
import { auth, nodes, nodesWhere, openSse, WORKERS_START_TIMEOUT_MS, type NodeView } from '../helpers/nodes.js';

// `GET /v1/nodes` on `herald --workers 2`: the workers share one SQLite file, and its node table.

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
