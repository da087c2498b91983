import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import type { EventInput, StoredEvent } from '../../src/core/event.js';
import { createPostgresPool } from '../../src/stores/postgres-connection.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { migratePostgres, POSTGRES_LOG_MIGRATIONS, type PostgresMigrationSet } from '../../src/stores/postgres-migrations.js';
import { testDatabase } from '../helpers/postgres.js';

/**
 * What the Postgres log adds to the EventStore contract: seqs in commit order whatever the
 * speed of each node's transaction, migrations that two nodes can start at once, and calls that
 * fail (instead of hanging) while the server cannot be reached.
 */

const input = (data: unknown, channel = 'orders'): EventInput => ({ channel, type: 'message', data: JSON.stringify(data) });

/** Resolves once `condition()` holds, checking every few milliseconds. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** The advisory lock a test holds to keep appends to `slow.wait` from committing. */
const SLOW_LOCK = 4242;

/**
 * Makes appends slow in the server, where a slow node's transaction really sits: an event on
 * `slow.wait` waits for SLOW_LOCK (held by the test) in the middle of its insert, and one on
 * `slow.sleep` sleeps 0 to 4 ms there; either way its append holds the log's head, uncommitted,
 * meanwhile. Works for both ways an append is written (one statement, or a transaction).
 */
async function slowChannels(admin: pg.Pool): Promise<void> {
  await admin.query(`
    CREATE FUNCTION herald.slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.channel = 'slow.wait' THEN PERFORM pg_advisory_xact_lock(${SLOW_LOCK}); END IF;
      IF NEW.channel = 'slow.sleep' THEN PERFORM pg_sleep((NEW.seq * 7 % 5) / 1000.0); END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER slow_insert BEFORE INSERT ON herald.events FOR EACH ROW EXECUTE FUNCTION herald.slow_insert();`);
}

/** Backends of this database waiting on a lock of `kind` (`advisory`, `transactionid`, `tuple`, ...). */
async function waitingOn(admin: pg.Pool, kinds: string[]): Promise<number> {
  const r = await admin.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = ANY($1)`,
    [kinds],
  );
  return (r.rows[0] as { n: number }).n;
}

/** Reads the log from `after` to its end by `through`, as the hub's follower and a resuming client do. */
async function tail(store: PostgresEventStore, after: number): Promise<{ events: StoredEvent[]; through: number }> {
  const events: StoredEvent[] = [];
  for (;;) {
    const page = await store.readPage(['>'], after, 100);
    events.push(...page.events);
    after = page.through;
    if (page.end) return { events, through: after };
  }
}

for (const way of ['one statement (plain events)', 'a transaction (events with idempotency keys)'] as const) {
  const keyed = way.startsWith('a transaction');
  test(`an append that commits after a faster one never hides behind it: seqs follow commit order, written in ${way}`, async (t) => {
    const db = await testDatabase(t);
    if (!db) return;
    await migratePostgres(db.pool());
    const admin = db.pool();
    await slowChannels(admin);
    const slow = new PostgresEventStore({ pool: db.pool() });
    const fast = new PostgresEventStore({ pool: db.pool() });
    const reader = new PostgresEventStore({ pool: db.pool() });
    // A connection of its own (not one of a pool that `drop` ends: that would wait for it).
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined); // cut when the database is dropped after the test
    await holder.connect();
    t.after(() => holder.end().catch(() => undefined));
    await holder.query('SELECT pg_advisory_lock($1)', [SLOW_LOCK]);

    const key = (k: string) => (keyed ? { idempotencyKey: k, idempotencyTtlMs: 60_000 } : {});
    const order: string[] = [];
    const slowDone = slow.append([{ ...input('slow', 'slow.wait'), ...key('s') }]).then((r) => (order.push('slow'), r));
    // The slow node took its seq and sits in its insert, uncommitted.
    await until(async () => (await waitingOn(admin, ['advisory'])) === 1);
    const fastDone = fast.append([{ ...input('fast'), ...key('f') }]).then((r) => (order.push('fast'), r));
    // The fast node waits for the log's head, not for a timer.
    await until(async () => (await waitingOn(admin, ['transactionid', 'tuple'])) > 0);
    // Nothing is visible yet: a reader tailing the log stays at 0.
    const early = await tail(reader, 0);
    assert.deepEqual(early.events, []);
    assert.equal(early.through, 0);
    assert.equal((await reader.head()).lastSeq, 0);

    await holder.query('SELECT pg_advisory_unlock($1)', [SLOW_LOCK]);
    const [[s], [f]] = await Promise.all([slowDone, fastDone]);
    assert.deepEqual(order, ['slow', 'fast']);
    assert.ok(s!.event.seq < f!.event.seq, `slow ${s!.event.seq}, fast ${f!.event.seq}`);
    const all = await tail(reader, early.through);
    assert.deepEqual(all.events.map((e) => JSON.parse(e.data) as string), ['slow', 'fast']);
  });
}

test('a reader tailing by position while nodes append with slow and fast transactions sees every event once', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  await migratePostgres(db.pool());
  await slowChannels(db.pool());
  const NODES = 4;
  const APPENDS_PER_NODE = 40;
  // Odd nodes' events sleep 0 to 4 ms in their insert (slow transactions); every third batch
  // carries idempotency keys (the other way an append is written).
  const nodes = Array.from({ length: NODES }, () => new PostgresEventStore({ pool: db.pool() }));
  const reader = new PostgresEventStore({ pool: db.pool() });
  let writing = true;
  const seen: number[] = [];
  const tailing = (async () => {
    let after = 0;
    while (writing) {
      const page = await tail(reader, after);
      for (const e of page.events) seen.push(e.seq);
      after = page.through;
    }
    const rest = await tail(reader, after);
    for (const e of rest.events) seen.push(e.seq);
  })();
  const appended = await Promise.all(
    nodes.map(async (node, i) => {
      const seqs: number[] = [];
      for (let k = 0; k < APPENDS_PER_NODE; k++) {
        const batch = Array.from({ length: (k % 3) + 1 }, (_, j) => ({
          ...input(`${i}.${k}.${j}`, i % 2 ? 'slow.sleep' : 'orders'),
          ...(k % 3 === 0 ? { idempotencyKey: `${i}.${k}.${j}`, idempotencyTtlMs: 60_000 } : {}),
        }));
        for (const r of await node.append(batch)) seqs.push(r.event.seq);
      }
      return seqs;
    }),
  );
  writing = false;
  await tailing;
  const total = appended.flat().length;
  assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i + 1));
});

test('two nodes migrating one schema at once apply each step once, and share one epoch', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const [a, b] = await Promise.all([migratePostgres(db.pool(), 'shared'), migratePostgres(db.pool(), 'shared')]);
  assert.deepEqual([...a!, ...b!].sort(), ['delivery:1', 'log:1', 'nodes:1']);
  assert.deepEqual(await migratePostgres(db.pool(), 'shared'), []);
  const epochs = await Promise.all([0, 1].map(() => new PostgresEventStore({ pool: db.pool(), schema: 'shared' }).head()));
  assert.equal(epochs[0]!.epoch, epochs[1]!.epoch);
});

test('another set of steps (the delivery store) is applied after the log, versioned on its own', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const pool = db.pool();
  const extra: PostgresMigrationSet = {
    name: 'extra',
    steps: [{ version: 1, up: async (c, s) => void (await c.query(`CREATE TABLE ${s}.extra_rows (seq bigint REFERENCES ${s}.events (seq))`)) }],
  };
  assert.deepEqual(await migratePostgres(pool, 'herald', [POSTGRES_LOG_MIGRATIONS, extra]), ['log:1', 'extra:1']);
  assert.deepEqual(await migratePostgres(pool, 'herald', [POSTGRES_LOG_MIGRATIONS, extra]), []);
  // A failing step leaves nothing behind and is tried again next time.
  const broken: PostgresMigrationSet = { name: 'extra', steps: [...extra.steps, { version: 2, up: async (c) => void (await c.query('SELECT 1/0')) }] };
  await assert.rejects(migratePostgres(pool, 'herald', [POSTGRES_LOG_MIGRATIONS, broken]), /division by zero/);
  const r = await pool.query(`SELECT set_name, version FROM herald.schema_migrations ORDER BY set_name, version`);
  assert.deepEqual(r.rows, [{ set_name: 'extra', version: 1 }, { set_name: 'log', version: 1 }]);
});

test('a store on a schema that was never migrated says to run `herald migrate`, and works once it is', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const pool = db.pool();
  const store = new PostgresEventStore({ pool });
  await assert.rejects(store.append([input(1)]), /herald migrate/);
  await migratePostgres(pool);
  const [r] = await store.append([input(1)]);
  assert.equal(r!.event.seq, 1);
});

test('calls reject, and do not hang, while Postgres cannot be reached', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  // A loopback port nothing listens on: the server is down.
  const down = createPostgresPool({ url: 'postgres://herald@127.0.0.1:1/herald' });
  t.after(() => down.end());
  const store = new PostgresEventStore({ pool: down });
  await assert.rejects(store.append([input(1)]), { code: 'ECONNREFUSED' });
  await assert.rejects(store.head(), { code: 'ECONNREFUSED' });
  await assert.rejects(store.readPage(['>'], 0, 10), { code: 'ECONNREFUSED' });
});

test('retention deletes in chunks past the chunk size, raises the watermark and keeps the newest', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const pool = db.pool();
  await migratePostgres(pool);
  const store = new PostgresEventStore({ pool });
  const TOTAL = 25_000;
  for (let i = 0; i < TOTAL; i += 5_000) await store.append(Array.from({ length: 5_000 }, (_, j) => input(i + j)));
  const deleted = await store.prune({ maxAgeMs: 0, maxEvents: 100, idempotencyTtlMs: 0 }, Date.now());
  assert.equal(deleted, TOTAL - 100);
  const head = await store.head();
  assert.equal(head.prunedThrough, TOTAL - 100);
  const left = await store.read(['>'], 0, 1_000);
  assert.deepEqual([left[0]!.seq, left.length], [TOTAL - 99, 100]);
  const [next] = await store.append([input('after')]);
  assert.equal(next!.event.seq, TOTAL + 1);
});

test('an append that gives up waiting for the head lock leaves its connection usable', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const admin = db.pool();
  await migratePostgres(admin);
  // One connection, and a short statement timeout, so the same connection serves the next append.
  const pool = new pg.Pool({ connectionString: db.url, max: 1, statement_timeout: 200 });
  pool.on('error', () => undefined); // its idle connection is cut when the database is dropped
  t.after(() => pool.end());
  const store = new PostgresEventStore({ pool });
  const holder = await admin.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT last_seq FROM herald.log_head FOR UPDATE');
  await assert.rejects(store.append([input(1)]), { code: '57014' }); // canceling statement due to statement timeout
  await holder.query('ROLLBACK');
  holder.release();
  const [r] = await store.append([input(2)]);
  assert.equal(r!.event.seq, 1);
});
