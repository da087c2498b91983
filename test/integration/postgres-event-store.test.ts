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

/**
 * `pool` with every append transaction held open after its rows are written and before its
 * COMMIT, for as long as `hold()` says: a slow node (a long GC pause, a slow network) between
 * taking its seqs and committing them. The rows and the locks are real; only the client waits.
 */
function slowAppends(pool: pg.Pool, hold: () => Promise<void>): pg.Pool {
  const connect = async () => {
    const client = await pool.connect();
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    return new Proxy(client, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
        return async (...args: unknown[]) => {
          const result = await query(...args);
          if (typeof args[0] === 'string' && args[0].includes('pg_notify')) await hold();
          return result;
        };
      },
    });
  };
  return new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'connect') return connect;
      const value = Reflect.get(target, prop, receiver) as unknown;
      // The pool's own methods run on the pool itself (pool.query calls this.connect with a callback).
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
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

test('an append that commits after a faster one never hides behind it: seqs follow commit order', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  await migratePostgres(db.pool());
  let inserted!: () => void;
  const written = new Promise<void>((resolve) => (inserted = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const slow = new PostgresEventStore({
    pool: slowAppends(db.pool(), () => {
      inserted();
      return released;
    }),
  });
  const fast = new PostgresEventStore({ pool: db.pool() });
  const reader = new PostgresEventStore({ pool: db.pool() });
  const admin = db.pool();

  const slowAppend = slow.append([input('slow')]);
  await written; // the slow node wrote its event and holds it, uncommitted
  const order: string[] = [];
  const slowDone = slowAppend.then((r) => (order.push('slow'), r));
  const fastDone = fast.append([input('fast')]).then((r) => (order.push('fast'), r));
  // The fast node waits for the log's head, not for a timer.
  await until(async () => {
    const r = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
    return (r.rows[0] as { n: number }).n > 0;
  });
  // Nothing is visible yet: a reader tailing the log stays at 0.
  const early = await tail(reader, 0);
  assert.deepEqual(early.events, []);
  assert.equal(early.through, 0);
  assert.equal((await reader.head()).lastSeq, 0);

  release();
  const [[s], [f]] = await Promise.all([slowDone, fastDone]);
  assert.deepEqual(order, ['slow', 'fast']);
  assert.ok(s!.event.seq < f!.event.seq, `slow ${s!.event.seq}, fast ${f!.event.seq}`);
  const all = await tail(reader, early.through);
  assert.deepEqual(all.events.map((e) => JSON.parse(e.data) as string), ['slow', 'fast']);
});

test('a reader tailing by position while nodes append with slow and fast transactions sees every event once', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  await migratePostgres(db.pool());
  const NODES = 4;
  const APPENDS_PER_NODE = 40;
  // Holds of 0 to 4 ms between writing and committing: some transactions slow, some fast.
  let n = 0;
  const hold = () => new Promise<void>((resolve) => setTimeout(resolve, (n++ * 7) % 5));
  const nodes = Array.from({ length: NODES }, (_, i) => new PostgresEventStore({ pool: i % 2 ? slowAppends(db.pool(), hold) : db.pool() }));
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
        const batch = Array.from({ length: (k % 3) + 1 }, (_, j) => input(`${i}.${k}.${j}`));
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
