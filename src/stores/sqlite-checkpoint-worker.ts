import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The background checkpointer's thread (see SqliteCheckpointer): its own connection to the
 * database file, copying committed WAL frames back into the database every `intervalMs` with a
 * PASSIVE checkpoint, which never blocks a reader or a writer (sqlite.org/wal.html#ckpt).
 * The checkpoint's fsyncs happen here, off the event loop that commits.
 */

const { file, intervalMs, restartPages, synchronous } = workerData as {
  file: string;
  intervalMs: number;
  restartPages: number;
  synchronous: 'FULL' | 'NORMAL';
};
const db = new Database(file, { fileMustExist: true });
// Only the RESTART checkpoint waits (for the writer to finish its transaction).
db.pragma('busy_timeout = 1000');
// The checkpoint syncs the WAL before copying and the database after, as this level says.
db.pragma(`synchronous = ${synchronous}`);
db.pragma('wal_autocheckpoint = 0');

const timer = setInterval(() => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    // Under a steady stream of commits a passive checkpoint may never find the WAL fully copied
    // at the moment a writer starts, which is when SQLite starts the WAL over; past this size,
    // wait for a gap between transactions so the next commit does.
    if (r && r.log > restartPages) db.pragma('wal_checkpoint(RESTART)');
  } catch (err) {
    parentPort?.postMessage({ error: (err as Error).message });
  }
}, intervalMs);

parentPort?.on('message', (m: { close?: boolean }) => {
  if (!m.close) return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
