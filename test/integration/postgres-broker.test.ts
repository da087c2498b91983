import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PostgresBroker } from '../../src/brokers/postgres-broker.js';
import type { StoredEvent } from '../../src/core/event.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { migratePostgres } from '../../src/stores/postgres-migrations.js';
import { testDatabase } from '../helpers/postgres.js';

/**
 * What the Postgres broker adds to the Broker contract: LISTEN/NOTIFY is only a wake-up, so a
 * LISTEN connection that dies costs latency, never an event.
 */

/** Resolves once `condition()` holds, checking every few milliseconds. */
async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5));
}

test('a node whose LISTEN connection is cut still hands on every event, and listens again', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const admin = db.pool();
  await migratePostgres(admin);
  const writer = new PostgresEventStore({ pool: db.pool() });
  const nodePool = db.pool();
  const broker = new PostgresBroker({ pool: nodePool, store: new PostgresEventStore({ pool: nodePool }) });
  t.after(() => broker.close());
  const got: number[] = [];
  broker.onEvents((events: readonly StoredEvent[]) => got.push(...events.map((e) => e.seq)));
  await broker.started;

  const listeners = async () =>
    (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`)).rows;
  await writer.append([{ channel: 'a', type: 'message', data: '1' }]);
  await until(() => got.length === 1);

  // The server ends the listening session (a restart, a failover, an idle-connection reaper).
  const [listener] = await listeners();
  assert.ok(listener, 'the broker listens');
  await admin.query('SELECT pg_terminate_backend($1)', [listener.pid]);
  // Appended while nobody listens: its notification is lost.
  await writer.append([{ channel: 'a', type: 'message', data: '2' }, { channel: 'b', type: 'message', data: '3' }]);
  await until(() => got.length === 3);
  assert.deepEqual(got, [1, 2, 3]);

  // A new LISTEN connection, and notifications wake the node again.
  await until(async () => (await listeners()).some((l) => l.pid !== listener.pid));
  await writer.append([{ channel: 'a', type: 'message', data: '4' }]);
  await until(() => got.length === 4);
  assert.deepEqual(got, [1, 2, 3, 4]);
});

test('a node that hears no notification at all still hands on every event, by reading the log', async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const admin = db.pool();
  await migratePostgres(admin);
  const nodePool = db.pool();
  const broker = new PostgresBroker({ pool: nodePool, store: new PostgresEventStore({ pool: nodePool }), pollIntervalMs: 50 });
  t.after(() => broker.close());
  const got: number[] = [];
  broker.onEvents((events) => got.push(...events.map((e) => e.seq)));
  await broker.started;
  const writer = new PostgresEventStore({ pool: db.pool() });
  // Two events committed the way an append commits them (head locked, rows, head moved), but
  // with no NOTIFY: as when the notification is lost, or a pooler in transaction mode drops it.
  const client = await admin.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT last_seq FROM herald.log_head FOR UPDATE`);
    await client.query(`INSERT INTO herald.events (seq, channel, type, data, time) VALUES (1, 'a', 'message', '1', 0), (2, 'a', 'message', '2', 0)`);
    await client.query(`UPDATE herald.log_head SET last_seq = 2`);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  await until(() => got.length === 2);
  assert.deepEqual(got, [1, 2]);
  await writer.append([{ channel: 'a', type: 'message', data: '3' }]);
  await until(() => got.length === 3);
  assert.deepEqual(got, [1, 2, 3]);
});

test("a node's own commits do not wake it to read the log; other nodes' commits do", async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  await migratePostgres(db.pool());
  const nodePool = db.pool();
  const nodeStore = new PostgresEventStore({ pool: nodePool });
  // Counts the broker's reads of the log (its head or a page: one or two per wake-up or poll); the store is real.
  let logReads = 0;
  const counted = new Proxy(nodeStore, {
    get(target, prop) {
      if (prop === 'head') return () => (logReads++, target.head());
      if (prop === 'readPage') return (...a: Parameters<typeof target.readPage>) => (logReads++, target.readPage(...a));
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  // A poll far beyond the test: every read here comes from a notification.
  const broker = new PostgresBroker({ pool: nodePool, store: counted, pollIntervalMs: 600_000 });
  t.after(() => broker.close());
  const got: number[] = [];
  broker.onEvents((events) => got.push(...events.map((e) => e.seq)));
  await broker.started;
  const settled = logReads;

  // This node appends and hands over, as the hub does.
  for (let i = 1; i <= 20; i++) {
    const [r] = await nodeStore.append([{ channel: 'a', type: 'message', data: String(i) }]);
    await broker.publish([r!.event]);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal(logReads - settled, 0, 'no read of the log for commits of its own pool');

  // Another node's commit still wakes it, long before the poll would.
  const other = new PostgresEventStore({ pool: db.pool() });
  await other.append([{ channel: 'a', type: 'message', data: '21' }]);
  await until(() => got.length === 21);
  assert.equal(got[20], 21);
  assert.equal(logReads - settled, 1, 'a wake-up reads one page (not the head first)');
});

test('a log that was dropped and made again is followed from its start, under its new epoch', { timeout: 20_000 }, async (t) => {
  const db = await testDatabase(t);
  if (!db) return;
  const admin = db.pool();
  await migratePostgres(admin);
  const nodePool = db.pool();
  // A poll far beyond the test: the new log must be found from notifications alone.
  const broker = new PostgresBroker({ pool: nodePool, store: new PostgresEventStore({ pool: nodePool }), pollIntervalMs: 600_000 });
  t.after(() => broker.close());
  const got: string[] = [];
  broker.onEvents((events) => got.push(...events.map((e) => e.id)));
  await broker.started;
  const writer = new PostgresEventStore({ pool: db.pool() });
  await writer.append([1, 2, 3].map((i) => ({ channel: 'a', type: 'message', data: String(i) })));
  await until(() => got.length === 3);
  const oldEpoch = got[0]!.slice(0, got[0]!.lastIndexOf('-'));

  await admin.query('DROP SCHEMA herald CASCADE');
  await migratePostgres(admin);
  await writer.append([1, 2, 3, 4, 5].map((i) => ({ channel: 'a', type: 'message', data: String(i) })));
  await until(() => got.length === 8);
  const newIds = got.slice(3);
  const newEpoch = newIds[0]!.slice(0, newIds[0]!.lastIndexOf('-'));
  assert.notEqual(newEpoch, oldEpoch);
  assert.deepEqual(newIds, [1, 2, 3, 4, 5].map((seq) => `${newEpoch}-${seq}`));
});
