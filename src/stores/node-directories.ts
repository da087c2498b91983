import type Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { NODE_EXPIRY_MS, type NodeDirectory, type NodeRecord } from '../core/nodes.js';
import { quoteSchema } from './postgres-migrations.js';

/**
 * The node directory (src/core/nodes.ts) of each backend. Every record is stored as its JSON
 * with the id and the time it was written beside it: the directory only ever filters by age,
 * and the record's shape can grow without a migration.
 */

const byId = (a: NodeRecord, b: NodeRecord) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** In process: a backend of one node (memory) sees only itself. */
export function memoryNodeDirectory(): NodeDirectory {
  const records = new Map<string, NodeRecord>();
  return {
    beat: async (record) => void records.set(record.id, record),
    list: async (now) => [...records.values()].filter((r) => r.lastSeenAt > now - NODE_EXPIRY_MS).sort(byId),
    remove: async (id) => void records.delete(id),
  };
}

/**
 * The `nodes` table of the SQLite file (migration 5), shared by the workers of `--workers N`.
 * A heartbeat is one small upsert; `list` deletes the expired rows it would not show.
 */
export function sqliteNodeDirectory(db: Database.Database): NodeDirectory {
  const upsert = db.prepare(
    `INSERT INTO nodes (id, seen_at, record) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, record = excluded.record`,
  );
  const expire = db.prepare('DELETE FROM nodes WHERE seen_at <= ?');
  const live = db.prepare('SELECT record FROM nodes WHERE seen_at > ? ORDER BY id');
  const remove = db.prepare('DELETE FROM nodes WHERE id = ?');
  return {
    beat: async (r) => void upsert.run(r.id, r.lastSeenAt, JSON.stringify(r)),
    list: async (now) => {
      expire.run(now - NODE_EXPIRY_MS);
      return (live.all(now - NODE_EXPIRY_MS) as { record: string }[]).map((row) => JSON.parse(row.record) as NodeRecord);
    },
    remove: async (id) => void remove.run(id),
  };
}

/**
 * Redis: one key per node (`{prefix}:node:<id>`, expiring NODE_EXPIRY_MS after its last beat, so
 * a node that died leaves by itself) and a set of the ids (`{prefix}:nodes`) to find them without
 * a scan. `list` drops from the set the ids whose key expired.
 */
export function redisNodeDirectory(redis: Redis, prefix: string): NodeDirectory {
  const set = `${prefix}nodes`;
  const key = (id: string) => `${prefix}node:${id}`;
  return {
    async beat(r) {
      await redis.multi().set(key(r.id), JSON.stringify(r), 'PX', NODE_EXPIRY_MS).sadd(set, r.id).exec();
    },
    // The keys' TTL (Redis's clock) is what expires a record, so nodes' clocks need not agree.
    async list() {
      const ids = await redis.smembers(set);
      if (ids.length === 0) return [];
      const values = await redis.mget(ids.map(key));
      const gone = ids.filter((_, i) => values[i] === null);
      if (gone.length > 0) await redis.srem(set, ...gone);
      return values
        .filter((v): v is string => v !== null)
        .map((v) => JSON.parse(v) as NodeRecord)
        .sort(byId);
    },
    async remove(id) {
      await redis.multi().del(key(id)).srem(set, id).exec();
    },
  };
}

/** Postgres: the `nodes` table of the schema (the `nodes` migration set). */
export function postgresNodeDirectory(pool: pg.Pool, schema: string): NodeDirectory {
  const s = quoteSchema(schema);
  return {
    async beat(r) {
      await pool.query(
        `INSERT INTO ${s}.nodes (id, seen_at, record) VALUES ($1, $2, $3)
           ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, record = excluded.record`,
        [r.id, r.lastSeenAt, JSON.stringify(r)],
      );
    },
    async list(now) {
      await pool.query(`DELETE FROM ${s}.nodes WHERE seen_at <= $1`, [now - NODE_EXPIRY_MS]);
      const rows = await pool.query<{ record: string }>(`SELECT record FROM ${s}.nodes WHERE seen_at > $1`, [
        now - NODE_EXPIRY_MS,
      ]);
      return rows.rows.map((row) => JSON.parse(row.record) as NodeRecord).sort(byId);
    },
    async remove(id) {
      await pool.query(`DELETE FROM ${s}.nodes WHERE id = $1`, [id]);
    },
  };
}
