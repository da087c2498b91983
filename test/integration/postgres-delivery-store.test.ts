import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { NewDelivery } from '../../src/core/delivery-store.js';
import { newEpoch } from '../../src/core/position.js';
import { POSTGRES_DELIVERY_MIGRATIONS } from '../../src/stores/postgres-delivery-migrations.js';
import { migratePostgres } from '../../src/stores/postgres-migrations.js';
import { PostgresDeliveryStore } from '../../src/stores/postgres-delivery-store.js';
import { endpointRecord } from '../contract/delivery-store.contract.js';
import { postgresSuiteSkip, testDatabases } from '../helpers/postgres-deliveries.js';

/**
 * What only a shared SQL database can get wrong: claims of several nodes meeting on one row
 * (FOR UPDATE SKIP LOCKED), schema migrations started by several nodes at once, and two Herald
 * backends in one database under different schemas.
 */

const skip = await postgresSuiteSkip();
const LEASE_MS = 60_000;
const databases = testDatabases('herald_pg_deliveries');
const pools: pg.Pool[] = [];
const epoch = newEpoch();

function pool(url: string): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max: 4 });
  p.on('error', () => undefined);
  pools.push(p);
  return p;
}

const store = (p: pg.Pool, schema?: string) => new PostgresDeliveryStore({ pool: p, schema, logId: () => Promise.resolve(epoch) });

const row = (endpointId: string, seq: number): NewDelivery => ({
  endpointId,
  eventSeq: seq,
  msgId: `msg_${seq}`,
  body: JSON.stringify({ n: seq, text: 'héllo ✓' }),
  status: 'pending',
  nextAt: 0,
  createdAt: 0,
});

const attempt = (id: number) => ({ deliveryId: id, at: 1, durationMs: 1, status: 200, responseBody: '', error: null });

let url = '';
before(async () => {
  if (skip) return;
  url = await databases.create();
  await migratePostgres(pool(url), 'herald', [POSTGRES_DELIVERY_MIGRATIONS]);
});
after(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await databases.dropAll();
});

test('a claim passes over rows another transaction holds instead of waiting, and never takes the row behind an ordered head', { skip }, async () => {
  const s = store(pool(url));
  await s.enqueue([row('par', 1), row('par', 2), row('ord', 3), row('ord', 4)]);
  const ids = new Map((await s.listDeliveries('par', { limit: 9 })).concat(await s.listDeliveries('ord', { limit: 9 })).map((d) => [d.eventSeq, d.id]));
  // Another node's claim in flight: its transaction holds the first row of each endpoint.
  const other = await pool(url).connect();
  try {
    await other.query('BEGIN');
    await other.query('SELECT id FROM herald.outbound_deliveries WHERE id = ANY($1) FOR UPDATE', [[ids.get(1), ids.get(3)]]);
    const r = await s.claim(
      [
        { endpointId: 'par', limit: 9, ordered: false },
        { endpointId: 'ord', limit: 9, ordered: true },
      ],
      0,
      LEASE_MS,
      'w',
    );
    assert.deepEqual(r.claimed.map((d) => d.eventSeq), [2], 'the free parallel row, and nothing of the ordered endpoint');
    assert.equal(r.claimed[0]!.body, row('par', 2).body, 'a claimed delivery carries its body');
  } finally {
    await other.query('ROLLBACK');
    other.release();
  }
  const rest = await s.claim([{ endpointId: 'ord', limit: 9, ordered: true }, { endpointId: 'par', limit: 9, ordered: false }], 0, LEASE_MS, 'w');
  assert.deepEqual(rest.claimed.map((d) => d.eventSeq), [3, 1], 'once the other transaction ends, the ordered head comes first');
  await s.close();
});

test('two nodes claiming an ordered endpoint at once hold at most one of its deliveries, in log order', { skip }, async () => {
  const a = store(pool(url));
  const b = store(pool(url));
  const total = 25;
  await a.enqueue(Array.from({ length: total }, (_, i) => row('ordered-race', i + 1)));
  const sent: number[] = [];
  for (let round = 0; sent.length < total && round < total * 4; round++) {
    const req = [{ endpointId: 'ordered-race', limit: 5, ordered: true }];
    const [x, y] = await Promise.all([a.claim(req, 0, LEASE_MS, 'a'), b.claim(req, 0, LEASE_MS, 'b')]);
    const claimed = [...x.claimed, ...y.claimed];
    assert.ok(claimed.length <= 1, `round ${round}: ${claimed.length} deliveries of one ordered endpoint held at once`);
    for (const d of claimed) {
      sent.push(d.eventSeq);
      await a.finish([{ id: d.id, claim: d.claims, attempt: attempt(d.id), outcome: { status: 'delivered' } }]);
    }
  }
  assert.deepEqual(sent, Array.from({ length: total }, (_, i) => i + 1));
  await a.close();
  await b.close();
});

test('nodes migrating one database at once apply each step once', { skip }, async () => {
  const fresh = await databases.create();
  await Promise.all([1, 2, 3].map(() => migratePostgres(pool(fresh), 'herald', [POSTGRES_DELIVERY_MIGRATIONS])));
  await migratePostgres(pool(fresh), 'herald', [POSTGRES_DELIVERY_MIGRATIONS]);
  const { rows } = await pool(fresh).query<{ version: number }>(
    "SELECT version FROM herald.schema_migrations WHERE set_name = 'delivery' ORDER BY version",
  );
  assert.deepEqual(rows.map((r) => r.version), POSTGRES_DELIVERY_MIGRATIONS.steps.map((m) => m.version));
  assert.equal(await store(pool(fresh)).endpointsVersion(), 0);
});

test('two backends in one database under different schemas share nothing', { skip }, async () => {
  await migratePostgres(pool(url), 'herald_other', [POSTGRES_DELIVERY_MIGRATIONS]);
  const mine = store(pool(url));
  const theirs = store(pool(url), 'herald_other');
  await mine.putEndpoint(endpointRecord('ep_schema'));
  await mine.acquireLease('planner', 'node-a', 0, LEASE_MS);
  assert.deepEqual(await theirs.listEndpoints(), []);
  assert.equal(await theirs.endpointsVersion(), 0);
  assert.equal(await theirs.acquireLease('planner', 'node-b', 0, LEASE_MS), true, 'each schema has its own planner lease');
});
