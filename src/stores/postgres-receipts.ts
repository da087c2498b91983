import type pg from 'pg';
import type { Receipt, ReceiptInput, ReceiptQuery, ReceiptStatus } from '../core/inbound-receipt.js';
import { PRUNE_CHUNK_ROWS } from '../core/limits.js';

/** A receipt to insert: the input, the status it is stored with and the event it points at. */
export interface ReceiptRowInput {
  readonly input: ReceiptInput;
  readonly status: ReceiptStatus;
  readonly seq: number | undefined;
}

interface ReceiptRow {
  id: string;
  source: string;
  status: ReceiptStatus;
  received_at: string;
  keep_until: string;
  provider_id: string | null;
  type: string | null;
  headers: string;
  body: Buffer | null;
  error_code: string | null;
  error_message: string | null;
  seq: string | null;
  replay_of: string | null;
}

/**
 * The INSERT of several receipts from arrays, `$1`..`$12` from `receiptParams` with `offset`
 * added to each number (so it can sit inside a larger statement). Ids are taken in array
 * order, so the returned ids sorted ascending are the inputs' ids in order.
 */
export function insertReceiptsSql(s: string, offset: number): string {
  const p = (i: number) => `$${i + offset}`;
  return `INSERT INTO ${s}.inbound_receipts (source, status, received_at, keep_until, provider_id, type, headers,
                                             body, error_code, error_message, seq, replay_of)
          SELECT source, status, received_at, keep_until, provider_id, type, headers, body, error_code, error_message, seq, replay_of
            FROM unnest(${p(1)}::text[], ${p(2)}::text[], ${p(3)}::bigint[], ${p(4)}::bigint[], ${p(5)}::text[], ${p(6)}::text[],
                        ${p(7)}::text[], ${p(8)}::bytea[], ${p(9)}::text[], ${p(10)}::text[], ${p(11)}::bigint[], ${p(12)}::bigint[])
                 WITH ORDINALITY AS r(source, status, received_at, keep_until, provider_id, type, headers, body, error_code,
                                      error_message, seq, replay_of, ord)
           ORDER BY ord
          RETURNING id`;
}

/** The twelve array parameters of `insertReceiptsSql`. */
export function receiptParams(rows: readonly ReceiptRowInput[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: 12 }, () => []);
  for (const { input: r, status, seq } of rows) {
    const values = [
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
    ];
    values.forEach((v, i) => cols[i]!.push(v));
  }
  return cols;
}

/** Reads of the receipts table and its retention, for PostgresEventStore. */
export class PostgresReceipts {
  readonly #pool: pg.Pool;
  readonly #s: string;

  constructor(pool: pg.Pool, quotedSchema: string) {
    this.#pool = pool;
    this.#s = quotedSchema;
  }

  /** Inserts receipts that append no event, in one statement; resolves to their ids in order. */
  async insertMany(rows: readonly ReceiptRowInput[]): Promise<number[]> {
    if (rows.length === 0) return [];
    const r = await this.#pool.query<{ id: string }>(insertReceiptsSql(this.#s, 0), receiptParams(rows));
    return r.rows.map((x) => Number(x.id)).sort((a, b) => a - b);
  }

  async get(source: string, id: number): Promise<Receipt | undefined> {
    const r = await this.#pool.query<ReceiptRow>(`SELECT * FROM ${this.#s}.inbound_receipts WHERE source = $1 AND id = $2`, [source, id]);
    return r.rows[0] && fromRow(r.rows[0]);
  }

  async list(source: string, q: ReceiptQuery): Promise<Receipt[]> {
    const before = q.before > 0 ? q.before : Number.MAX_SAFE_INTEGER;
    const r =
      q.status === undefined
        ? await this.#pool.query<ReceiptRow>(
            `SELECT * FROM ${this.#s}.inbound_receipts WHERE source = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
            [source, before, q.limit],
          )
        : await this.#pool.query<ReceiptRow>(
            `SELECT * FROM ${this.#s}.inbound_receipts WHERE source = $1 AND id < $2 AND status = $3 ORDER BY id DESC LIMIT $4`,
            [source, before, q.status, q.limit],
          );
    return r.rows.map(fromRow);
  }

  /**
   * Deletes expired receipts and digests, then caps every source's receipts at its newest
   * `perSource` (0: no cap); digests are never capped (a flood of forged arrivals must not push
   * one out). Every DELETE takes at most PRUNE_CHUNK_ROWS rows, in a transaction of its own.
   */
  async prune(now: number, perSource: number): Promise<void> {
    const s = this.#s;
    await this.#chunked(`DELETE FROM ${s}.inbound_receipts WHERE id IN
                           (SELECT id FROM ${s}.inbound_receipts WHERE keep_until < $1 LIMIT $2)`, [now]);
    await this.#chunked(`DELETE FROM ${s}.inbound_digests WHERE ctid = ANY(ARRAY(
                           SELECT ctid FROM ${s}.inbound_digests WHERE keep_until < $1 LIMIT $2))`, [now]);
    if (perSource <= 0) return;
    const sources = await this.#pool.query<{ source: string }>(`SELECT DISTINCT source FROM ${s}.inbound_receipts`);
    for (const { source } of sources.rows) {
      const row = await this.#pool.query<{ id: string }>(
        `SELECT id FROM ${s}.inbound_receipts WHERE source = $1 ORDER BY id DESC LIMIT 1 OFFSET $2`,
        [source, perSource],
      );
      if (!row.rows[0]) continue;
      await this.#chunked(`DELETE FROM ${s}.inbound_receipts WHERE id IN
                             (SELECT id FROM ${s}.inbound_receipts WHERE source = $1 AND id <= $3 ORDER BY id LIMIT $2)`, [
        source,
        undefined,
        Number(row.rows[0].id),
      ]);
    }
  }

  /** Runs `sql` (whose `$2` is the chunk size) until a run deletes less than a chunk. */
  async #chunked(sql: string, params: unknown[]): Promise<void> {
    const args = [...params];
    args[1] = PRUNE_CHUNK_ROWS;
    for (;;) {
      const r = await this.#pool.query(sql, args);
      if ((r.rowCount ?? 0) < PRUNE_CHUNK_ROWS) return;
    }
  }
}

function fromRow(r: ReceiptRow): Receipt {
  return {
    id: Number(r.id),
    source: r.source,
    status: r.status,
    receivedAt: Number(r.received_at),
    keepUntil: Number(r.keep_until),
    providerId: r.provider_id ?? undefined,
    type: r.type ?? undefined,
    headers: JSON.parse(r.headers) as Record<string, string>,
    body: r.body ?? undefined,
    error: r.error_code === null ? undefined : { code: r.error_code, message: r.error_message ?? '' },
    seq: r.seq === null ? undefined : Number(r.seq),
    replayOf: r.replay_of === null ? undefined : Number(r.replay_of),
  };
}
