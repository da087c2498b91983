import type Database from 'better-sqlite3';
import type { Receipt, ReceiptInput, ReceiptQuery, ReceiptStatus } from '../core/inbound-receipt.js';
import { PRUNE_CHUNK_ROWS } from '../core/limits.js';


interface ReceiptRow {
  id: number;
  source: string;
  status: ReceiptStatus;
  received_at: number;
  keep_until: number;
  provider_id: string | null;
  type: string | null;
  headers: string;
  body: Buffer | null;
  error_code: string | null;
  error_message: string | null;
  seq: number | null;
  replay_of: number | null;
}

/** A digest already held: the event it appended (its row may have left the log since). */
export interface DigestMatch {
  seq: number;
  time: number;
  channel: string | null;
  type: string | null;
  data: string | null;
}

/**
 * The inbound receipts table of the SQLite log. Not a store of its own: SqliteEventStore calls
 * `insert` inside its append transaction, which is what makes "event, idempotency key and
 * receipt are durable together" true. `id` is AUTOINCREMENT, so ids are never reused.
 *
 * Beside it, `inbound_digests` holds the digest of the signed bytes of each accepted arrival
 * until its receipt's `keepUntil`: a table of its own, so the per-source receipt cap (which a
 * flood of forged requests fills) can never push a digest out and let a replay through.
 */
export class SqliteReceipts {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #get: Database.Statement;
  readonly #list: Database.Statement;
  readonly #listByStatus: Database.Statement;
  readonly #insertMany: (inputs: readonly ReceiptInput[]) => number[];
  readonly #insertDigest: Database.Statement;
  readonly #findDigest: Database.Statement;

  constructor(db: Database.Database) {
    this.#db = db;
    // An expired row not yet pruned is replaced by the next accepted arrival with its digest.
    this.#insertDigest = db.prepare(
      'INSERT OR REPLACE INTO inbound_digests (source, digest, seq, at, keep_until) VALUES (?, ?, ?, ?, ?)',
    );
    this.#findDigest = db.prepare(
      `SELECT d.seq, d.at AS time, e.channel, e.type, e.data
         FROM inbound_digests d LEFT JOIN events e ON e.seq = d.seq
        WHERE d.source = ? AND d.digest = ? AND d.keep_until >= ?`,
    );
    this.#insert = db.prepare(`
      INSERT INTO inbound_receipts (source, status, received_at, keep_until, provider_id, type, headers,
                                    body, error_code, error_message, seq, replay_of)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#get = db.prepare('SELECT * FROM inbound_receipts WHERE source = ? AND id = ?');
    this.#list = db.prepare(
      'SELECT * FROM inbound_receipts WHERE source = ? AND id < ? ORDER BY id DESC LIMIT ?',
    );
    this.#listByStatus = db.prepare(
      'SELECT * FROM inbound_receipts WHERE source = ? AND id < ? AND status = ? ORDER BY id DESC LIMIT ?',
    );
    this.#insertMany = db.transaction((inputs: readonly ReceiptInput[]) =>
      inputs.map((r) => this.insert(r, r.status, undefined)),
    );
  }

  /** Inserts one receipt; call inside the caller's transaction. Resolves to its id. */
  insert(r: ReceiptInput, status: ReceiptStatus, seq: number | undefined): number {
    const info = this.#insert.run(
      r.source,
      status,
      r.receivedAt,
      r.keepUntil,
      r.providerId ?? null,
      r.type ?? null,
      JSON.stringify(r.headers),
      status === 'accepted' ? (r.body ?? null) : null,
      r.error?.code ?? null,
      r.error?.message ?? null,
      seq ?? null,
      r.replayOf ?? null,
    );
    if (status === 'accepted' && r.digest !== undefined && seq !== undefined) {
      this.#insertDigest.run(r.source, Buffer.from(r.digest, 'hex'), seq, r.receivedAt, r.keepUntil);
    }
    return Number(info.lastInsertRowid);
  }

  /**
   * The accepted arrival of `source` whose signed bytes had this digest, while its window
   * (`keepUntil`) lasts; call inside the append transaction, before inserting.
   */
  findDigest(source: string, digest: string, now: number): DigestMatch | undefined {
    return this.#findDigest.get(source, Buffer.from(digest, 'hex'), now) as DigestMatch | undefined;
  }

  /** Inserts receipts that append no event, in one transaction of their own. */
  insertMany(inputs: readonly ReceiptInput[]): number[] {
    return this.#insertMany(inputs);
  }

  get(source: string, id: number): Receipt | undefined {
    const row = this.#get.get(source, id) as ReceiptRow | undefined;
    return row && fromRow(row);
  }

  list(source: string, q: ReceiptQuery): Receipt[] {
    const before = q.before > 0 ? q.before : Number.MAX_SAFE_INTEGER;
    const rows = (
      q.status === undefined
        ? this.#list.all(source, before, q.limit)
        : this.#listByStatus.all(source, before, q.status, q.limit)
    ) as ReceiptRow[];
    return rows.map(fromRow);
  }

  /**
   * Deletes expired receipts and digests, then caps every source's receipts at its newest
   * `perSource` (0: no cap); digests are not capped (see the class comment).
   */
  prune(now: number, perSource: number): void {
    const expired = this.#db.prepare(
      'DELETE FROM inbound_receipts WHERE id IN (SELECT id FROM inbound_receipts WHERE keep_until < ? LIMIT ?)',
    );
    while (expired.run(now, PRUNE_CHUNK_ROWS).changes === PRUNE_CHUNK_ROWS) {
      /* next chunk */
    }
    const expiredDigests = this.#db.prepare(
      `DELETE FROM inbound_digests WHERE (source, digest) IN
         (SELECT source, digest FROM inbound_digests WHERE keep_until < ? LIMIT ?)`,
    );
    while (expiredDigests.run(now, PRUNE_CHUNK_ROWS).changes === PRUNE_CHUNK_ROWS) {
      /* next chunk */
    }
    if (perSource <= 0) return;
    const sources = this.#db.prepare('SELECT DISTINCT source FROM inbound_receipts').all() as { source: string }[];
    const boundary = this.#db.prepare(
      'SELECT id FROM inbound_receipts WHERE source = ? ORDER BY id DESC LIMIT 1 OFFSET ?',
    );
    const cut = this.#db.prepare(
      `DELETE FROM inbound_receipts WHERE id IN
         (SELECT id FROM inbound_receipts WHERE source = ? AND id <= ? ORDER BY id LIMIT ?)`,
    );
    for (const { source } of sources) {
      const row = boundary.get(source, perSource) as { id: number } | undefined;
      if (!row) continue;
      while (cut.run(source, row.id, PRUNE_CHUNK_ROWS).changes === PRUNE_CHUNK_ROWS) {
        /* next chunk */
      }
    }
  }
}

function fromRow(r: ReceiptRow): Receipt {
  return {
    id: r.id,
    source: r.source,
    status: r.status,
    receivedAt: r.received_at,
    keepUntil: r.keep_until,
    providerId: r.provider_id ?? undefined,
    type: r.type ?? undefined,
    headers: JSON.parse(r.headers) as Record<string, string>,
    body: r.body ?? undefined,
    error: r.error_code === null ? undefined : { code: r.error_code, message: r.error_message ?? '' },
    seq: r.seq ?? undefined,
    replayOf: r.replay_of ?? undefined,
  };
}
