import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ClosedError } from '../core/errors.js';
import { makeStoredEvent, type EventInput, type StoredEvent } from '../core/event.js';
import {
  readFilled,
  type AppendResult,
  type EventStore,
  type LogBounds,
  type ReadPage,
  type RetentionPolicy,
} from '../core/event-store.js';
import { makeReceipt, type Receipt, type ReceiptInput, type ReceiptQuery } from '../core/inbound-receipt.js';
import { PRUNE_CHUNK_ROWS } from '../core/limits.js';
import { SqliteCheckpointer } from './sqlite-checkpointer.js';
import { SqliteLogReader, type EventRow } from './sqlite-log-reader.js';
import { migrateSqlite, sqliteLogEpoch } from './sqlite-migrations.js';
import { SqliteReceipts } from './sqlite-receipts.js';
import { SqliteStreamPositions } from './sqlite-stream-positions.js';
import { WalSync } from './wal-sync.js';

export interface SqliteEventStoreOptions {
  /** Path of the database file; `:memory:` for a throwaway one. */
  file: string;
  /**
   * `full`: an append resolves once its commit is fsync'd (survives power loss); `normal`: once
   * committed (survives a process crash). The fsync runs off the event loop (WalSync), and the
   * hub groups the publishes that arrive meanwhile into the next commit.
   */
  synchronous?: 'full' | 'normal';
  /**
   * Checkpoint the WAL from a background thread instead of in the commit that crosses the
   * threshold (SqliteCheckpointer). Default: on for a file, off for `:memory:`.
   */
  backgroundCheckpoints?: boolean;
  now?: () => number;
}

/**
 * KiB of database pages SQLite keeps in memory per connection (its default is 2,000 KiB): the
 * recent log, the idempotency keys and the delivery queue are read back soon after they are
 * written, and a page found here costs no system call.
 */
export const PAGE_CACHE_KIB = 65_536;

/** How long a statement waits for a lock another handle holds before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000;
/** Between two tries of switching a new file to WAL while another process holds its lock. */
const WAL_SWITCH_RETRY_MS = 10;

/**
 * Switches the file to WAL. On a new file (still in rollback mode) two processes opening it at
 * once (the workers of `--workers N`, a Kafka consumer beside a server) both read it and then
 * want its exclusive lock: SQLite answers one of them SQLITE_BUSY at once, without waiting the
 * busy timeout (waiting could deadlock). That one tries again until the other is done, within
 * the busy timeout; once the file is in WAL the switch is a no-op that takes no such lock.
 */
function switchToWal(db: Database.Database): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      // The constructor is synchronous (so is better-sqlite3): sleep the thread, briefly.
      Atomics.wait(pause, 0, 0, WAL_SWITCH_RETRY_MS);
    }
  }
}

/**
 * The embedded default log: one SQLite file in WAL mode (better-sqlite3, synchronous API).
 * `seq` is an AUTOINCREMENT rowid, so positions are never reused, even after pruning.
 */
export class SqliteEventStore implements EventStore {
  readonly durable = true;
  readonly #db: Database.Database;
  readonly #now: () => number;
  readonly #insert: Database.Statement;
  readonly #findKey: Database.Statement;
  readonly #insertKey: Database.Statement;
  readonly #appendTx: Database.Transaction<(inputs: readonly EventInput[]) => AppendResult[]>;
  readonly #receipts: SqliteReceipts;
  readonly #positions: SqliteStreamPositions;
  readonly #reader: SqliteLogReader;
  readonly #checkpointer: SqliteCheckpointer | undefined;
  /** Set for `synchronous: full` on a file: commits are made durable by an fdatasync off the loop. */
  readonly #wal: WalSync | undefined;
  /**
   * With WalSync: the newest `seq` known durable, from this process's appends or from a sync that
   * started after the commit was seen. Readers see the log only up to it: an event a power loss
   * could still take back is shown to nobody, neither live nor in a replay, whichever process
   * (workers sharing the file) committed it.
   */
  #durableThrough = 0;
  /**
   * This process's appends committed but still waiting for their fsync (their first and last
   * `seq`), oldest first: while nothing but these lies past #durableThrough, the log is shown
   * only up to it, without waiting.
   */
  readonly #syncing: { first: number; last: number }[] = [];
  /** The newest `seq` ever assigned and the prune watermark, read from the file: see #visible(). */
  readonly #lastSeq: Database.Statement;
  readonly #prunedThroughRow: Database.Statement;
  /** The log's identity, made with the file (see LogBounds.epoch). */
  readonly #epoch: string;
  #closed = false;

  constructor(opts: SqliteEventStoreOptions) {
    if (opts.file !== ':memory:') mkdirSync(dirname(opts.file), { recursive: true });
    this.#now = opts.now ?? Date.now;
    const db = (this.#db = new Database(opts.file, { timeout: BUSY_TIMEOUT_MS }));
    switchToWal(db);
    const full = opts.synchronous !== 'normal';
    // `full` on a file: SQLite commits at NORMAL and WalSync fsyncs the WAL off the event loop.
    db.pragma(`synchronous = ${full && opts.file === ':memory:' ? 'FULL' : 'NORMAL'}`);
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    // Tables and their upgrades live in one place (sqlite-migrations.ts), for every part of the
    // backend that keeps rows in this file: the log, receipts, stream positions, deliveries.
    try {
      migrateSqlite(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#epoch = sqliteLogEpoch(db);
    // Read on every call (other processes append to and prune the same file): see #visible().
    this.#lastSeq = db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`);
    this.#prunedThroughRow = db.prepare(`SELECT v FROM meta WHERE k = 'pruned_through'`);
    const epoch = this.#epoch;

    this.#reader = new SqliteLogReader(db, epoch);
    this.#insert = db.prepare('INSERT INTO events (channel, type, data, time) VALUES (?, ?, ?, ?)');
    this.#findKey = db.prepare(
      `SELECT k.seq, k.at AS time, e.channel, e.type, e.data
         FROM idempotency_keys k LEFT JOIN events e ON e.seq = k.seq WHERE k.key = ?`,
    );
    // Receipts live in their own table (sqlite-receipts.ts), written inside #appendTx below.
    this.#receipts = new SqliteReceipts(db);
    this.#positions = new SqliteStreamPositions(db, epoch);
    this.#insertKey = db.prepare('INSERT INTO idempotency_keys (key, seq, at, keep_until) VALUES (?, ?, ?, ?)');
    this.#appendTx = db.transaction((inputs: readonly EventInput[]) => {
      const now = this.#now();
      const results: AppendResult[] = [];
      for (const input of inputs) {
        const origin = input.origin;
        const replayed = origin && this.#positions.replayed(origin.stream, origin.offset, input, now);
        if (replayed) {
          results.push({ event: replayed, duplicate: true });
          continue;
        }
        const key = input.idempotencyKey;
        if (key !== undefined) {
          const known = this.#findKey.get(key) as Partial<EventRow> & { seq: number; time: number } | undefined;
          if (known) {
            const event = makeStoredEvent(
              known.seq,
              known.channel ?? input.channel,
              known.type ?? input.type,
              known.data ?? input.data,
              known.time,
              epoch,
            );
            const receiptId = input.receipt && this.#receipts.insert(input.receipt, 'duplicate', known.seq);
            results.push({ event, duplicate: true, receiptId });
            continue;
          }
        }
        const digest = input.receipt?.digest;
        const signedBefore = digest === undefined ? undefined : this.#receipts.findDigest(input.receipt!.source, digest, now);
        if (signedBefore) {
          const { seq, time, channel, type, data } = signedBefore;
          const event = makeStoredEvent(seq, channel ?? input.channel, type ?? input.type, data ?? input.data, time, epoch);
          const receiptId = this.#receipts.insert(input.receipt!, 'duplicate', seq);
          results.push({ event, duplicate: true, receiptId });
          continue;
        }
        const seq = Number(this.#insert.run(input.channel, input.type, input.data, now).lastInsertRowid);
        if (key !== undefined) this.#insertKey.run(key, seq, now, now + (input.idempotencyTtlMs ?? 0));
        if (origin) this.#positions.record(origin.stream, origin.offset, seq);
        const receiptId = input.receipt && this.#receipts.insert(input.receipt, input.receipt.status, seq);
        results.push({ event: makeStoredEvent(seq, input.channel, input.type, input.data, now, epoch), duplicate: false, receiptId });
      }
      return results;
    });
    // The schema's commit above created the WAL file, which stays while this connection is open.
    if (full && opts.file !== ':memory:') this.#wal = new WalSync(`${db.name}-wal`);
    // Last: the schema exists before the thread opens its own connection to the file.
    if (opts.backgroundCheckpoints ?? opts.file !== ':memory:') this.#checkpointer = new SqliteCheckpointer(db);
  }

  /**
   * Resolves once every commit made on this database so far survives a power loss (with
   * `synchronous: normal`, at once: commits only promise to survive a process crash). For the
   * other tables of the file (the outbound endpoints) whose writes an API acknowledges.
   */
  sync(): Promise<void> {
    return this.#wal ? this.#wal.sync() : Promise.resolve();
  }

  /**
   * The open database, for components that keep their own tables in the same file (the outbound
   * delivery queue), so the log and what is owed from it live and survive together.
   */
  get database(): Database.Database {
    return this.#db;
  }

  append(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    try {
      // IMMEDIATE takes the write lock up front: with several processes on one file (Kafka
      // consumers of one group sharing a log), a read-then-write transaction could otherwise
      // fail with SQLITE_BUSY_SNAPSHOT instead of waiting its turn (busy_timeout).
      const results = this.#appendTx.immediate(inputs);
      let first = Infinity;
      let last = 0;
      for (const r of results) {
        if (r.duplicate) continue;
        if (r.event.seq < first) first = r.event.seq;
        if (r.event.seq > last) last = r.event.seq;
      }
      if (!this.#wal) return Promise.resolve(results);
      const pending = { first, last };
      if (last > 0) this.#syncing.push(pending);
      // Resolved once durable: the hub answers publishers and dispatches only then. Should the
      // fsync fail, the commit stays in the file unseen, and every later append fails too
      // (WalSync): a restart is the way out, as after any failed fsync.
      return this.#wal.sync().then(() => {
        if (last > 0) this.#syncing.splice(this.#syncing.indexOf(pending), 1);
        if (last > this.#durableThrough) this.#durableThrough = last;
        return results;
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]> {
    return readFilled((a, n) => this.readPage(patterns, a, n), after, limit);
  }

  readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    try {
      const visible = this.#visible();
      if (typeof visible === 'number') return Promise.resolve(this.#reader.page(patterns, after, limit, visible + 1));
      return visible.then((b) => this.#reader.page(patterns, after, limit, b.lastSeq + 1));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  head(): Promise<LogBounds> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    // After a failed fsync nothing can be promised: /readyz says so, and traffic goes elsewhere.
    if (this.#wal?.failure) return Promise.reject(this.#wal.failure);
    try {
      const visible = this.#visible();
      return typeof visible === 'number' ? Promise.resolve(this.#bounds(visible)) : visible;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The newest `seq` readers may see: the file's head as every process sharing it committed it,
   * read each time, never kept in a counter (a stale head answers other workers' ids with a
   * reset), and durable. When all that is not known durable yet is this process's own appends,
   * the log stops below them, at once (their append resolves after the fsync). When another
   * process committed some of it, an fsync is waited for (#durable) and the whole head is shown:
   * that process may have acknowledged its ids already, and one of them must never be past the
   * head. A number when nothing had to wait.
   */
  #visible(): number | Promise<LogBounds> {
    const lastSeq = (this.#lastSeq.get() as { seq: number | null } | undefined)?.seq ?? 0;
    if (!this.#wal || lastSeq <= this.#durableThrough) return lastSeq;
    if (this.#onlyOwnPendingThrough(lastSeq)) return this.#durableThrough;
    return this.#durable(lastSeq).then(() => this.#bounds(lastSeq));
  }

  /** True when every `seq` after #durableThrough through `lastSeq` is one of this process's appends. */
  #onlyOwnPendingThrough(lastSeq: number): boolean {
    let next = this.#durableThrough + 1;
    for (const p of this.#syncing) {
      if (p.last < next) continue;
      if (p.first > next) return false;
      next = p.last + 1;
    }
    return next > lastSeq;
  }

  /** The log's bounds with `lastSeq` as head; the prune watermark as the file holds it now. */
  #bounds(lastSeq: number): LogBounds {
    const row = this.#prunedThroughRow.get() as { v: number } | undefined;
    return { lastSeq, prunedThrough: row?.v ?? 0, epoch: this.#epoch };
  }

  /**
   * Resolves once every commit through `seq` (already seen in the file) is durable: an fdatasync
   * of the WAL that starts now covers every commit made before it, by any process. Usually a
   * commit another worker made and fsync'd itself, so the sync finds little to write.
   */
  async #durable(seq: number): Promise<void> {
    await this.#wal!.sync();
    if (seq > this.#durableThrough) this.#durableThrough = seq;
  }

  prune(policy: RetentionPolicy, now: number): Promise<number> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    const db = this.#db;
    let deleted = 0;
    const boundaries: number[] = [];
    if (policy.maxAgeMs > 0) {
      const row = db
        .prepare('SELECT MAX(seq) AS seq FROM events WHERE time < ?')
        .get(now - policy.maxAgeMs) as { seq: number | null };
      if (row.seq !== null) boundaries.push(row.seq);
    }
    if (policy.maxEvents > 0) {
      const row = db
        .prepare('SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?')
        .get(policy.maxEvents) as { seq: number } | undefined;
      if (row) boundaries.push(row.seq);
    }
    if (boundaries.length > 0) {
      const through = Math.max(...boundaries);
      const chunk = db.prepare(
        'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT ?)',
      );
      // Raise the watermark before deleting: a reader racing the prune is told to reset rather
      // than shown a log with a hole in it.
      // MAX with the stored value: another process sharing the file may have pruned further.
      db.prepare(`INSERT INTO meta (k, v) VALUES ('pruned_through', ?)
                  ON CONFLICT (k) DO UPDATE SET v = MAX(v, excluded.v)`).run(through);
      for (;;) {
        const n = chunk.run(through, PRUNE_CHUNK_ROWS).changes;
        deleted += n;
        if (n < PRUNE_CHUNK_ROWS) break;
      }
    }
    // A key goes with its event, or after the TTL; an input's own longer TTL outlives both.
    db.prepare('DELETE FROM idempotency_keys WHERE keep_until < ? AND (at < ? OR seq <= ?)').run(
      now,
      now - policy.idempotencyTtlMs,
      this.#bounds(0).prunedThrough,
    );
    this.#receipts.prune(now, policy.maxReceiptsPerSource ?? 0);
    return Promise.resolve(deleted);
  }

  recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    try {
      const ids = this.#receipts.insertMany(receipts);
      const made = receipts.map((r, i) => makeReceipt(ids[i]!, r, r.status, undefined));
      return this.sync().then(() => made);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    return Promise.resolve(this.#receipts.list(source, query));
  }

  getReceipt(source: string, id: number): Promise<Receipt | undefined> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    return Promise.resolve(this.#receipts.get(source, id));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#checkpointer?.close();
    await this.#wal?.close();
    this.#db.close();
  }
}
