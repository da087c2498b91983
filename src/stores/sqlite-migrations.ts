import type Database from 'better-sqlite3';
import { newEpoch } from '../core/position.js';

/**
 * One step of the SQLite schema. `up` runs inside the transaction that also records `version`
 * in `PRAGMA user_version`, so a step is applied entirely or not at all.
 */
interface Migration {
  readonly version: number;
  readonly up: (db: Database.Database) => void;
}

/**
 * Every table of the SQLite backend, in the order it came to be: the log, its idempotency keys,
 * inbound receipts and digests, stream positions (Kafka), and the outbound delivery queue with its
 * planner cursor, its delivery leases and its named leases (the planner's), and the node directory. The one place that knows the schema; stores only prepare statements.
 *
 * Never edit a released step: add one. A step must be safe on any file the previous steps (or a
 * release from before versioning) left behind.
 */
const MIGRATIONS: readonly Migration[] = [
  {
    // The schema as it was before versioning. Every statement is IF NOT EXISTS: files created by
    // those releases (user_version 0) already hold some or all of it, with their data.
    version: 1,
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS events (
          seq     INTEGER PRIMARY KEY AUTOINCREMENT,
          channel TEXT    NOT NULL,
          type    TEXT    NOT NULL,
          data    TEXT    NOT NULL,
          time    INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS events_by_channel ON events (channel, seq);
        CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
        CREATE TABLE IF NOT EXISTS idempotency_keys (
          key TEXT PRIMARY KEY,
          seq INTEGER NOT NULL,
          at  INTEGER NOT NULL,
          keep_until INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS idempotency_keys_by_at ON idempotency_keys (at);
        CREATE INDEX IF NOT EXISTS idempotency_keys_by_seq ON idempotency_keys (seq);
        CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
      `);
      // Logs created before per-key retention existed lack keep_until (0: only the store-wide TTL).
      const keyColumns = db.prepare(`SELECT name FROM pragma_table_info('idempotency_keys')`).all() as { name: string }[];
      if (!keyColumns.some((c) => c.name === 'keep_until')) {
        db.exec('ALTER TABLE idempotency_keys ADD COLUMN keep_until INTEGER NOT NULL DEFAULT 0');
      }
      db.exec(`
        CREATE TABLE IF NOT EXISTS inbound_receipts (
          id            INTEGER PRIMARY KEY AUTOINCREMENT,
          source        TEXT    NOT NULL,
          status        TEXT    NOT NULL,
          received_at   INTEGER NOT NULL,
          keep_until    INTEGER NOT NULL,
          provider_id   TEXT,
          type          TEXT,
          headers       TEXT    NOT NULL,
          body          BLOB,
          error_code    TEXT,
          error_message TEXT,
          seq           INTEGER,
          replay_of     INTEGER
        );
        CREATE INDEX IF NOT EXISTS inbound_receipts_by_source ON inbound_receipts (source, id);
        CREATE INDEX IF NOT EXISTS inbound_receipts_by_keep ON inbound_receipts (keep_until);
        CREATE TABLE IF NOT EXISTS inbound_digests (
          source     TEXT    NOT NULL,
          digest     BLOB    NOT NULL,
          seq        INTEGER NOT NULL,
          at         INTEGER NOT NULL,
          keep_until INTEGER NOT NULL,
          PRIMARY KEY (source, digest)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS inbound_digests_by_keep ON inbound_digests (keep_until);
        CREATE TABLE IF NOT EXISTS stream_positions (
          stream      TEXT    PRIMARY KEY,
          last_offset INTEGER NOT NULL,
          seq         INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbound_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbound_endpoints (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbound_deliveries (
          id             INTEGER PRIMARY KEY AUTOINCREMENT,
          endpoint_id    TEXT    NOT NULL,
          event_seq      INTEGER NOT NULL,
          msg_id         TEXT    NOT NULL,
          body           TEXT    NOT NULL,
          status         TEXT    NOT NULL,
          attempts       INTEGER NOT NULL DEFAULT 0,
          schedule_start INTEGER NOT NULL DEFAULT 0,
          next_at        INTEGER NOT NULL,
          claims         INTEGER NOT NULL DEFAULT 0,
          lease_owner    TEXT,
          created_at     INTEGER NOT NULL,
          updated_at     INTEGER NOT NULL,
          last_status    INTEGER,
          last_error     TEXT
        );
        -- Due work is looked up among pending rows only: a finished delivery leaves this index
        -- instead of moving inside it, and the index stays the size of the queue, not the history.
        DROP INDEX IF EXISTS outbound_due;
        CREATE INDEX IF NOT EXISTS outbound_pending_due ON outbound_deliveries (endpoint_id, next_at) WHERE status = 'pending';
        CREATE INDEX IF NOT EXISTS outbound_fifo ON outbound_deliveries (endpoint_id, status, id);
        CREATE INDEX IF NOT EXISTS outbound_by_endpoint ON outbound_deliveries (endpoint_id, id);
        CREATE TABLE IF NOT EXISTS outbound_attempts (
          id            INTEGER PRIMARY KEY,
          delivery_id   INTEGER NOT NULL,
          at            INTEGER NOT NULL,
          duration_ms   INTEGER NOT NULL,
          status        INTEGER,
          response_body TEXT    NOT NULL,
          error         TEXT
        );
        CREATE INDEX IF NOT EXISTS outbound_attempts_by_delivery ON outbound_attempts (delivery_id, id);
      `);
    },
  },
  {
    // The log's identity (its epoch), made once with the log. A file whose delivery queue already
    // named its log (outbound_meta.log_id, the prefix of every webhook-id sent from it) keeps that
    // name as its epoch, so both agree; the queue of a new file takes the epoch as its name.
    version: 2,
    up(db) {
      db.exec('CREATE TABLE log_identity (epoch TEXT NOT NULL, created_at INTEGER NOT NULL)');
      const named = db.prepare(`SELECT v FROM outbound_meta WHERE k = 'log_id'`).get() as { v: string } | undefined;
      const epoch = named?.v ?? newEpoch();
      db.prepare('INSERT INTO log_identity (epoch, created_at) VALUES (?, ?)').run(epoch, Date.now());
      db.prepare(`INSERT OR IGNORE INTO outbound_meta (k, v) VALUES ('log_id', ?)`).run(epoch);
    },
  },
  {
    // Named leases with an owner and an expiry: the one node that plans deliveries holds `planner`.
    version: 3,
    up(db) {
      db.exec('CREATE TABLE outbound_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID');
    },
  },
  {
    // The endpoints version (DeliveryStore.endpointsVersion), raised in the transaction of every
    // change to endpoints, so every process on the file sees when to reload them.
    version: 4,
    up(db) {
      db.exec(`INSERT OR IGNORE INTO outbound_meta (k, v) VALUES ('endpoints_version', '0')`);
    },
  },
  {
    // The node directory (src/stores/node-directories.ts): each process on the file writes its
    // heartbeat record here, so any of them can list them all (`GET /v1/nodes`).
    version: 5,
    up(db) {
      db.exec('CREATE TABLE nodes (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL, record TEXT NOT NULL) WITHOUT ROWID');
    },
  },
];

/** The schema version this release writes (`PRAGMA user_version` of an up-to-date file). */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the file's schema up to SQLITE_SCHEMA_VERSION, one step per transaction, in order.
 * Idempotent: an up-to-date file is left as it is. Each step takes the write lock first and reads
 * the version again under it, so processes opening one file at once (workers, Kafka consumers)
 * apply each step exactly once. A file from a newer release is refused rather than guessed at.
 */
export function migrateSqlite(db: Database.Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const found = version();
  if (found > SQLITE_SCHEMA_VERSION) {
    throw new Error(
      `${db.name}: schema version ${found} is newer than this release knows (${SQLITE_SCHEMA_VERSION}); upgrade Herald`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= found) continue;
    db.transaction(() => {
      if (version() >= m.version) return;
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
}

/** The epoch of the log in this file (written by migration 2). */
export function sqliteLogEpoch(db: Database.Database): string {
  return (db.prepare('SELECT epoch FROM log_identity LIMIT 1').get() as { epoch: string }).epoch;
}
