import type Database from 'better-sqlite3';
import type { LeaseHolder } from '../core/delivery-store.js';

/** Named leases (DeliveryStore.acquireLease) in the `outbound_leases` table, synchronous. */
export interface SqliteLeases {
  acquire(name: string, owner: string, now: number, ttlMs: number): boolean;
  release(name: string, owner: string): void;
  holder(name: string, now: number): LeaseHolder | undefined;
}

/**
 * Each call is one statement, so one atomic step under SQLite's write lock for every connection
 * and process sharing the file: a take-over of an expired lease and its holder's late renewal
 * cannot both succeed.
 */
export function sqliteLeases(db: Database.Database): SqliteLeases {
  const acquire = db.prepare(
    // The upsert updates only a row that is expired or already ours; otherwise nothing changes.
    `INSERT INTO outbound_leases (name, owner, until) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
       WHERE outbound_leases.owner = excluded.owner OR outbound_leases.until <= ?`,
  );
  const release = db.prepare('DELETE FROM outbound_leases WHERE name = ? AND owner = ?');
  const holder = db.prepare('SELECT owner, until FROM outbound_leases WHERE name = ? AND until > ?');
  return {
    acquire: (name, owner, now, ttlMs) => acquire.run(name, owner, now + ttlMs, now).changes > 0,
    release: (name, owner) => void release.run(name, owner),
    holder: (name, now) => holder.get(name, now) as LeaseHolder | undefined,
  };
}
