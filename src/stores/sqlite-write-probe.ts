import type Database from 'better-sqlite3';

/** bytes written by one probe: at least a page, so a full disk cannot take it in free slack. */
const PROBE_BYTES = 8_192;

/**
 * A write that proves the database file takes writes again, without touching the log: one row
 * of a scratch table, replaced each time, committed like an append (WAL frames, then the page).
 * Throws what an append would (SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY).
 */
export function sqliteWriteProbe(db: Database.Database): () => void {
  let replace: Database.Statement | undefined;
  return () => {
    if (!replace) {
      db.exec('CREATE TABLE IF NOT EXISTS herald_write_probe (id INTEGER PRIMARY KEY, pad BLOB NOT NULL)');
      replace = db.prepare('INSERT OR REPLACE INTO herald_write_probe (id, pad) VALUES (1, zeroblob(?))');
    }
    replace.run(PROBE_BYTES);
  };
}
