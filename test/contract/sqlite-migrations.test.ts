import { isEpoch } from '../../src/core/position.js';
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { migrateSqlite, SQLITE_SCHEMA_VERSION } from '../../src/stores/sqlite-migrations.js';

/**
 * Data folders made before the schema was versioned (user_version 0) open without loss. The old
 * DDL is written out here as those releases ran it, not taken from the migrations under test.
 */
const LOG_BEFORE_RECEIPTS = `
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, type TEXT NOT NULL,
    data TEXT NOT NULL, time INTEGER NOT NULL
  );
  CREATE INDEX events_by_channel ON events (channel, seq);
  CREATE INDEX events_by_time ON events (time);
  CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX idempotency_keys_by_at ON idempotency_keys (at);
  CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
`;

const OUTBOUND_WITH_OLD_INDEX = `
  CREATE TABLE outbound_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE outbound_endpoints (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE outbound_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint_id TEXT NOT NULL, event_seq INTEGER NOT NULL,
    msg_id TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    schedule_start INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, claims INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_status INTEGER, last_error TEXT
  );
  CREATE INDEX outbound_due ON outbound_deliveries (endpoint_id, status, next_at);
  CREATE TABLE outbound_attempts (
    id INTEGER PRIMARY KEY, delivery_id INTEGER NOT NULL, at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
    status INTEGER, response_body TEXT NOT NULL, error TEXT
  );
`;

function legacyFile(ddl: string, fill: (db: Database.Database) => void): string {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-legacy-')), 'herald.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(ddl);
  fill(db);
  assert.equal(db.pragma('user_version', { simple: true }), 0);
  db.close();
  return file;
}

function fillLog(db: Database.Database): void {
  const insert = db.prepare('INSERT INTO events (channel, type, data, time) VALUES (?, ?, ?, ?)');
  for (let i = 1; i <= 5; i++) insert.run('orders', 'order.paid', JSON.stringify({ n: i }), 1_000 + i);
  db.prepare('INSERT INTO idempotency_keys (key, seq, at) VALUES (?, ?, ?)').run('k3', 3, 1_003);
  db.prepare(`INSERT INTO meta (k, v) VALUES ('pruned_through', 0)`).run();
}

test('a log made before receipts and versioning opens with its events, keys and positions', async () => {
  const file = legacyFile(LOG_BEFORE_RECEIPTS, fillLog);
  const store = new SqliteEventStore({ file, synchronous: 'normal' });
  try {
    const events = await store.read(['orders'], 0, 10);
    assert.deepEqual(events.map((e) => JSON.parse(e.data).n), [1, 2, 3, 4, 5]);
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5]);
    const head = await store.head();
    assert.equal(head.lastSeq, 5);
    assert.ok(isEpoch(head.epoch), head.epoch);
    const [dup, fresh] = await store.append([
      { channel: 'orders', type: 'order.paid', data: '{}', idempotencyKey: 'k3' },
      { channel: 'orders', type: 'order.paid', data: '{"n":6}' },
    ]);
    assert.equal(dup!.duplicate, true, 'an old key still deduplicates');
    assert.equal(dup!.event.seq, 3);
    assert.equal(fresh!.event.seq, 6, 'positions continue, never reused');
  } finally {
    await store.close();
  }
  const db = new Database(file);
  assert.equal(db.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
  db.close();
});

test('a file with the released schema and an outbound queue keeps its deliveries and names its epoch after the queue', async () => {
  const file = legacyFile(LOG_BEFORE_RECEIPTS + OUTBOUND_WITH_OLD_INDEX, (db) => {
    fillLog(db);
    db.exec('ALTER TABLE idempotency_keys ADD COLUMN keep_until INTEGER NOT NULL DEFAULT 0');
    db.prepare(`INSERT INTO outbound_meta (k, v) VALUES ('log_id', 'a1b2c3d4e5f6'), ('planned_through', '5')`).run();
    db.prepare(
      `INSERT INTO outbound_deliveries (endpoint_id, event_seq, msg_id, body, status, next_at, created_at, updated_at)
       VALUES ('ep_1', 5, 'msg_a1b2c3d4e5f6_5', '{}', 'pending', 0, 1, 1)`,
    ).run();
  });
  const store = new SqliteEventStore({ file, synchronous: 'normal' });
  const deliveries = new SqliteDeliveryStore(store.database);
  try {
    assert.equal((await store.head()).epoch, 'a1b2c3d4e5f6', 'the webhook-id prefix already sent stays the log name');
    assert.equal(await deliveries.logId(), 'a1b2c3d4e5f6');
    assert.equal(await deliveries.plannedThrough(), 5);
    const [d] = await deliveries.listDeliveries('ep_1', { limit: 10 });
    assert.equal(d?.msgId, 'msg_a1b2c3d4e5f6_5');
    assert.equal((await store.read(['>'], 0, 10)).length, 5);
    const indexes = store.database.prepare(`SELECT name FROM sqlite_master WHERE type = 'index'`).pluck().all();
    assert.ok(!indexes.includes('outbound_due') && indexes.includes('outbound_pending_due'));
  } finally {
    await deliveries.close();
    await store.close();
  }
});

test('migrating is idempotent: reopening keeps the epoch, and a newer file is refused', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-migrate-')), 'herald.db');
  const first = new SqliteEventStore({ file, synchronous: 'normal' });
  const { epoch } = await first.head();
  migrateSqlite(first.database);
  await first.close();
  const again = new SqliteEventStore({ file, synchronous: 'normal' });
  assert.equal((await again.head()).epoch, epoch);
  assert.equal(again.database.prepare('SELECT COUNT(*) FROM log_identity').pluck().get(), 1);
  again.database.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
  await again.close();
  assert.throws(() => new SqliteEventStore({ file, synchronous: 'normal' }), /newer than this release knows/);
});
