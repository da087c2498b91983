import type pg from 'pg';
import { isPattern, literalPrefix } from '../core/channel.js';
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
import { PRUNE_CHUNK_ROWS, READ_SCAN_MAX_ROWS } from '../core/limits.js';
import { channelMatcher } from '../core/subscriber-index.js';
import { checkMigrated, POSTGRES_DEFAULT_SCHEMA, POSTGRES_LOG_MIGRATIONS, quoteSchema } from './postgres-migrations.js';
import { insertReceiptsSql, PostgresReceipts, receiptParams, type ReceiptRowInput } from './postgres-receipts.js';

export interface PostgresEventStoreOptions {
  /** The pool (owned by the caller: close() leaves it open); see createPostgresPool. */
  readonly pool: pg.Pool;
  /** The schema holding the log's tables, made by migratePostgres; default `herald`. */
  readonly schema?: string | undefined;
  readonly now?: (() => number) | undefined;
}

/** The LISTEN/NOTIFY channel on which a schema's log announces commits (a wake-up, no payload). */
export function postgresLogChannel(schema: string): string {
  return `${schema}_log`;
}

/** Channel names a multi-name read filters on in SQL; past this many the window is filtered here. */
export const POSTGRES_READ_MAX_NAMES = 64;

/** An events row as pg returns it (bigint columns as strings). */
interface Row {
  seq: string;
  channel: string;
  type: string;
  data: string;
  time: string;
}

/** A key, digest or stream position the log already holds, with its event when still there. */
interface Known {
  seq: number;
  time: number;
  channel: string | null;
  type: string | null;
  data: string | null;
  offset?: number;
}

/**
 * The log on Postgres, shared by every Herald node that points at the same schema.
 *
 * Seqs are handed out in commit order: every append locks the one row of `log_head`
 * (`SELECT ... FOR UPDATE`) and takes `last_seq + 1..` in the same transaction, so the next
 * append gets the lock, and its seqs, only once this one committed or rolled back. A reader
 * that saw seq n can therefore never later find a new event below n: no skipped event, whatever
 * the speed of each transaction (a sequence or an identity column would not give that, since
 * they are handed out at insert and commit in any order). The cost is that appends to one log
 * are serial, one at a time across every node; the hub's group commit makes that one append per
 * tick per node.
 *
 * Durability is Postgres's (`synchronous_commit` on, and a synchronous standby for failover).
 * An event, its idempotency key, its receipt and its stream position commit together. The
 * constructor does no I/O: the first call checks that `migratePostgres` was run.
 */
export class PostgresEventStore implements EventStore {
  readonly durable = true;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #s: string;
  readonly #now: () => number;
  readonly #receipts: PostgresReceipts;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(opts: PostgresEventStoreOptions) {
    this.#pool = opts.pool;
    this.#schema = opts.schema ?? POSTGRES_DEFAULT_SCHEMA;
    this.#s = quoteSchema(this.#schema);
    this.#now = opts.now ?? Date.now;
    this.#receipts = new PostgresReceipts(this.#pool, this.#s);
  }

  async append(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    await this.#open();
    for (const input of inputs) checkInput(input);
    if (inputs.length === 0) return [];
    if (inputs.every(isPlain)) return this.#appendPlain(inputs);
    const s = this.#s;
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // A connection that fails while checked out emits 'error' besides failing its query: without
    // a listener that would be an uncaught exception. The client is then destroyed, not reused.
    const onError = (err: Error) => (broken ??= err);
    client.on('error', onError);
    try {
      try {
        // BEGIN and the lock in one round trip: the lock is what puts seqs in commit order.
        const locked = (await client.query(
          `BEGIN; SELECT last_seq, (SELECT epoch FROM ${s}.log_meta) AS epoch FROM ${s}.log_head FOR UPDATE`,
        )) as unknown as pg.QueryResult<{ last_seq: string; epoch: string }>[];
        const head = locked[1]!.rows[0]!;
        const now = this.#now();
        const known = await this.#lookUp(client, inputs, now);
        const plan = resolve(inputs, known, Number(head.last_seq), now, head.epoch);
        const receiptIds = await this.#write(client, plan, now);
        await client.query('COMMIT');
        return plan.results.map((res, i) => {
          const at = plan.receiptOf[i]!;
          return at < 0 ? res : { ...res, receiptId: receiptIds[at] };
        });
      } catch (err) {
        // Also after a failed lock (a statement timeout): the client goes back to the pool outside any transaction.
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      }
    } catch (err) {
      broken ??= isConnectionError(err) ? (err as Error) : undefined;
      throw err;
    } finally {
      // A destroyed client may still report its end: the listener stays with it.
      if (!broken) client.off('error', onError);
      client.release(broken);
    }
  }

  /**
   * Events with no idempotency key, receipt or stream position (nothing to look up first) in one
   * statement, one round trip: raising `log_head` locks it (as `FOR UPDATE` does on the general
   * path) until the statement's own transaction commits, so seqs still follow commit order, and
   * the lock is held for the server's work only, not for round trips to this process.
   */
  async #appendPlain(inputs: readonly EventInput[]): Promise<AppendResult[]> {
    const s = this.#s;
    const now = this.#now();
    const r = await this.#pool.query<{ before: string; epoch: string }>(
      `WITH
       h AS (UPDATE ${s}.log_head SET last_seq = last_seq + $5 RETURNING last_seq - $5 AS before),
       e AS (INSERT INTO ${s}.events (seq, channel, type, data, time)
               SELECT h.before + x.n, x.channel, x.type, x.data, $4
                 FROM h, unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(channel, type, data, n))
       SELECT h.before, (SELECT epoch FROM ${s}.log_meta) AS epoch, pg_notify($6, '') AS woke FROM h`,
      [inputs.map((i) => i.channel), inputs.map((i) => i.type), inputs.map((i) => i.data), now, inputs.length, postgresLogChannel(this.#schema)],
    );
    const row = r.rows[0]!;
    const before = Number(row.before);
    return inputs.map((input, i) => ({
      event: makeStoredEvent(before + i + 1, input.channel, input.type, input.data, now, row.epoch),
      duplicate: false,
    }));
  }

  /** The keys, digests and stream positions of this batch the log already holds (under the head lock). */
  async #lookUp(client: pg.PoolClient, inputs: readonly EventInput[], now: number): Promise<Map<string, Known>> {
    const keys: string[] = [];
    const sources: string[] = [];
    const digests: string[] = [];
    const streams: string[] = [];
    for (const input of inputs) {
      if (input.idempotencyKey !== undefined) keys.push(input.idempotencyKey);
      if (input.receipt?.digest !== undefined) {
        sources.push(input.receipt.source);
        digests.push(input.receipt.digest);
      }
      if (input.origin) streams.push(input.origin.stream);
    }
    const found = new Map<string, Known>();
    if (keys.length + digests.length + streams.length === 0) return found;
    const s = this.#s;
    const r = await client.query<{ kind: string; name: string; seq: string; time: string | null; channel: string | null; type: string | null; data: string | null; off: string | null }>(
      `SELECT 'k' AS kind, k.key AS name, k.seq, k.at AS time, e.channel, e.type, e.data, NULL::bigint AS off
         FROM ${s}.idempotency_keys k LEFT JOIN ${s}.events e ON e.seq = k.seq
        WHERE k.key = ANY($1::text[])
       UNION ALL
       SELECT 'd', d.source || E'\\n' || encode(d.digest, 'hex'), d.seq, d.at, e.channel, e.type, e.data, NULL
         FROM ${s}.inbound_digests d LEFT JOIN ${s}.events e ON e.seq = d.seq
        WHERE (d.source, d.digest) IN (SELECT x.source, decode(x.digest, 'hex') FROM unnest($2::text[], $3::text[]) AS x(source, digest))
          AND d.keep_until >= $5
       UNION ALL
       SELECT 'o', p.stream, p.seq, e.time, e.channel, e.type, e.data, p.last_offset
         FROM ${s}.stream_positions p LEFT JOIN ${s}.events e ON e.seq = p.seq
        WHERE p.stream = ANY($4::text[])`,
      [keys, sources, digests.map((d) => d.toLowerCase()), streams, now],
    );
    for (const row of r.rows) {
      found.set(`${row.kind}:${row.name}`, {
        seq: Number(row.seq),
        time: row.time === null ? now : Number(row.time),
        channel: row.channel,
        type: row.type,
        data: row.data,
        offset: row.off === null ? undefined : Number(row.off),
      } as Known);
    }
    return found;
  }

  /** Writes a resolved batch in one statement; resolves to the ids of its receipts, in input order. */
  async #write(client: pg.PoolClient, plan: Plan, now: number): Promise<number[]> {
    const s = this.#s;
    const ev = plan.events;
    const params: unknown[] = [
      ev.map((e) => e.seq),
      ev.map((e) => e.channel),
      ev.map((e) => e.type),
      ev.map((e) => e.data),
      now,
      plan.keys.map((k) => k.key),
      plan.keys.map((k) => k.seq),
      plan.keys.map((k) => k.keepUntil),
      [...plan.streams.keys()],
      [...plan.streams.values()].map((p) => p.offset),
      [...plan.streams.values()].map((p) => p.seq),
      plan.digests.map((d) => d.source),
      plan.digests.map((d) => d.digest),
      plan.digests.map((d) => d.seq),
      plan.digests.map((d) => d.keepUntil),
      ev.length > 0 ? ev[ev.length - 1]!.seq : 0,
      postgresLogChannel(this.#schema),
      ...receiptParams(plan.receipts),
    ];
    const r = await client.query<{ ids: string[] | null }>(
      `WITH
       e AS (INSERT INTO ${s}.events (seq, channel, type, data, time)
               SELECT seq, channel, type, data, $5 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS x(seq, channel, type, data)),
       k AS (INSERT INTO ${s}.idempotency_keys (key, seq, at, keep_until)
               SELECT key, seq, $5, keep_until FROM unnest($6::text[], $7::bigint[], $8::bigint[]) AS x(key, seq, keep_until)),
       p AS (INSERT INTO ${s}.stream_positions (stream, last_offset, seq)
               SELECT * FROM unnest($9::text[], $10::bigint[], $11::bigint[])
             ON CONFLICT (stream) DO UPDATE SET last_offset = excluded.last_offset, seq = excluded.seq),
       d AS (INSERT INTO ${s}.inbound_digests (source, digest, seq, at, keep_until)
               SELECT source, decode(digest, 'hex'), seq, $5, keep_until
                 FROM unnest($12::text[], $13::text[], $14::bigint[], $15::bigint[]) AS x(source, digest, seq, keep_until)
             ON CONFLICT (source, digest) DO UPDATE SET seq = excluded.seq, at = excluded.at, keep_until = excluded.keep_until),
       h AS (UPDATE ${s}.log_head SET last_seq = $16 WHERE $16 > 0),
       r AS (${insertReceiptsSql(s, 17)})
       SELECT (SELECT array_agg(id ORDER BY id) FROM r) AS ids,
              CASE WHEN $16 > 0 THEN pg_notify($17, '') END AS woke`,
      params,
    );
    return (r.rows[0]?.ids ?? []).map(Number);
  }

  read(patterns: readonly string[], after: number, limit: number): Promise<StoredEvent[]> {
    return readFilled((a, n) => this.readPage(patterns, a, n), after, limit);
  }

  /**
   * One page, in one statement (so the head, the epoch and the rows are one snapshot). One exact
   * name: a range of the `(channel, seq)` index, at most `limit` rows. Anything else: a window of
   * at most READ_SCAN_MAX_ROWS positions after `after` (seqs have no holes but pruned ones), by
   * primary key, filtered in SQL on the exact names and the patterns' literal prefixes, then
   * exactly here; a leading wildcard reads the window unfiltered.
   */
  async readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage> {
    await this.#open();
    const names = patterns.filter((p) => !isPattern(p));
    const wildcards = patterns.filter(isPattern);
    const prefixes = [...new Set(wildcards.map(literalPrefix))];
    const want = Math.max(1, Math.min(limit, READ_SCAN_MAX_ROWS));
    const single = wildcards.length === 0 && new Set(names).size === 1;
    // `>` matches every channel: the window's rows are the page, no filter anywhere.
    const everything = wildcards.includes('>');
    const exact = everything || (wildcards.length === 0 && names.length <= POSTGRES_READ_MAX_NAMES);
    const params: unknown[] = [after, exact ? want : READ_SCAN_MAX_ROWS];
    let filter = '';
    if (everything) {
      // no filter
    } else if (exact) {
      params.push(single ? names[0] : names);
      filter = single ? 'AND channel = $3' : 'AND channel = ANY($3::text[])';
    } else if (!prefixes.includes('') && names.length + prefixes.length <= POSTGRES_READ_MAX_NAMES) {
      params.push(names, prefixes);
      filter = 'AND (channel = ANY($3::text[]) OR channel ^@ ANY($4::text[]))';
    }
    const upper = single ? 'h.last_seq' : `LEAST(h.last_seq, $1::bigint + ${READ_SCAN_MAX_ROWS})`;
    const s = this.#s;
    const r = await this.#pool.query<{ last_seq: string; epoch: string } & { [K in keyof Row]: Row[K] | null }>(
      `WITH h AS (SELECT (SELECT last_seq FROM ${s}.log_head) AS last_seq, (SELECT epoch FROM ${s}.log_meta) AS epoch)
       SELECT h.last_seq, h.epoch, e.seq, e.channel, e.type, e.data, e.time
         FROM h LEFT JOIN LATERAL (
           SELECT seq, channel, type, data, time FROM ${s}.events
            WHERE seq > $1 AND seq <= ${upper} ${filter}
            ORDER BY seq LIMIT $2) e ON true
        ORDER BY e.seq`,
      params,
    );
    const last = Number(r.rows[0]?.last_seq ?? 0);
    const epoch = r.rows[0]?.epoch ?? '';
    if (after >= last) return { events: [], through: Math.max(after, last), end: true };
    const hi = single ? last : Math.min(last, after + READ_SCAN_MAX_ROWS);
    const match = exact ? undefined : channelMatcher(patterns);
    const out: StoredEvent[] = [];
    for (const row of r.rows) {
      if (row.seq === null) continue;
      if (match && !match(row.channel!)) continue;
      out.push(makeStoredEvent(Number(row.seq), row.channel!, row.type!, row.data!, Number(row.time), epoch));
      if (out.length >= limit) {
        const through = out[out.length - 1]!.seq;
        return { events: out, through, end: through >= last };
      }
    }
    // Exact names with a full page: the LIMIT cut the window there.
    const through = exact && r.rows.length === want && out.length > 0 ? out[out.length - 1]!.seq : hi;
    return { events: out, through, end: through >= last };
  }

  async head(): Promise<LogBounds> {
    await this.#open();
    const r = await this.#pool.query<{ last_seq: string; pruned_through: string; epoch: string }>(
      `SELECT (SELECT last_seq FROM ${this.#s}.log_head) AS last_seq, pruned_through, epoch FROM ${this.#s}.log_meta`,
    );
    const row = r.rows[0]!;
    return { lastSeq: Number(row.last_seq), prunedThrough: Number(row.pruned_through), epoch: row.epoch };
  }

  /**
   * Retention in chunks: the watermark is raised first (a reader racing the prune is told to
   * reset rather than shown a log with a hole), then events go PRUNE_CHUNK_ROWS at a time, each
   * DELETE a transaction of its own, so no lock is held for long and appends go on meanwhile.
   */
  async prune(policy: RetentionPolicy, now: number): Promise<number> {
    await this.#open();
    const s = this.#s;
    const pool = this.#pool;
    const boundaries: number[] = [];
    if (policy.maxAgeMs > 0) {
      const r = await pool.query<{ seq: string | null }>(`SELECT max(seq) AS seq FROM ${s}.events WHERE time < $1`, [now - policy.maxAgeMs]);
      if (r.rows[0]?.seq != null) boundaries.push(Number(r.rows[0].seq));
    }
    if (policy.maxEvents > 0) {
      const r = await pool.query<{ seq: string }>(`SELECT seq FROM ${s}.events ORDER BY seq DESC LIMIT 1 OFFSET $1`, [policy.maxEvents]);
      if (r.rows[0]) boundaries.push(Number(r.rows[0].seq));
    }
    let deleted = 0;
    if (boundaries.length > 0) {
      const through = Math.max(...boundaries);
      // GREATEST: another node may have pruned further meanwhile.
      await pool.query(`UPDATE ${s}.log_meta SET pruned_through = GREATEST(pruned_through, $1)`, [through]);
      for (;;) {
        const r = await pool.query(
          `DELETE FROM ${s}.events WHERE seq IN (SELECT seq FROM ${s}.events WHERE seq <= $1 ORDER BY seq LIMIT $2)`,
          [through, PRUNE_CHUNK_ROWS],
        );
        deleted += r.rowCount ?? 0;
        if ((r.rowCount ?? 0) < PRUNE_CHUNK_ROWS) break;
      }
    }
    // A key goes with its event, or after the TTL; an input's own longer TTL outlives both.
    for (;;) {
      const r = await pool.query(
        `DELETE FROM ${s}.idempotency_keys WHERE key IN (
           SELECT key FROM ${s}.idempotency_keys
            WHERE keep_until < $1 AND (at < $2 OR seq <= (SELECT pruned_through FROM ${s}.log_meta)) LIMIT $3)`,
        [now, now - policy.idempotencyTtlMs, PRUNE_CHUNK_ROWS],
      );
      if ((r.rowCount ?? 0) < PRUNE_CHUNK_ROWS) break;
    }
    await this.#receipts.prune(now, policy.maxReceiptsPerSource ?? 0);
    return deleted;
  }

  async recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]> {
    await this.#open();
    const ids = await this.#receipts.insertMany(receipts.map((input) => ({ input, status: input.status, seq: undefined })));
    return receipts.map((r, i) => makeReceipt(ids[i]!, r, r.status, undefined));
  }

  async listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]> {
    await this.#open();
    return this.#receipts.list(source, query);
  }

  async getReceipt(source: string, id: number): Promise<Receipt | undefined> {
    await this.#open();
    return this.#receipts.get(source, id);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Rejects after close; otherwise waits for the one-time check that the schema is migrated. */
  #open(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('The event store'));
    // A failed check (the server unreachable) is not kept: the next call checks again.
    this.#ready ??= checkMigrated(this.#pool, this.#schema, POSTGRES_LOG_MIGRATIONS).catch((err: unknown) => {
      this.#ready = undefined;
      throw err;
    });
    return this.#ready;
  }
}

/** What one batch writes, decided under the head lock from what the log already holds. */
interface Plan {
  results: AppendResult[];
  /** Per result, the index of its receipt in `receipts`, or -1. */
  receiptOf: number[];
  events: { seq: number; channel: string; type: string; data: string }[];
  keys: { key: string; seq: number; keepUntil: number }[];
  streams: Map<string, { offset: number; seq: number }>;
  digests: { source: string; digest: string; seq: number; keepUntil: number }[];
  receipts: ReceiptRowInput[];
}

/**
 * Decides each input of a batch in order, as the specification reads: a replayed stream
 * offset, then a known idempotency key, then a known digest make a duplicate; anything else is a
 * new event at the next seq. What this batch stores counts for its later inputs too.
 */
/** An input with nothing the log may already hold: no idempotency key, receipt or stream position. */
function isPlain(input: EventInput): boolean {
  return input.idempotencyKey === undefined && input.receipt === undefined && input.origin === undefined;
}

function resolve(inputs: readonly EventInput[], known: Map<string, Known>, lastSeq: number, now: number, epoch: string): Plan {
  const plan: Plan = { results: [], receiptOf: [], events: [], keys: [], streams: new Map(), digests: [], receipts: [] };
  const streams = new Map<string, { offset: number; event: StoredEvent }>();
  for (const [k, v] of known) {
    if (!k.startsWith('o:')) continue;
    const stream = k.slice(2);
    const fallback = inputs.find((i) => i.origin?.stream === stream)!;
    const event = makeStoredEvent(v.seq, v.channel ?? fallback.channel, v.type ?? fallback.type, v.data ?? fallback.data, v.time, epoch);
    streams.set(stream, { offset: v.offset!, event });
  }
  const fromKnown = (k: Known, input: EventInput) =>
    makeStoredEvent(k.seq, k.channel ?? input.channel, k.type ?? input.type, k.data ?? input.data, k.time, epoch);
  /** Records an input's result; its receipt, when it has one, is the last one pushed. */
  const done = (result: AppendResult, withReceipt: boolean) => {
    plan.results.push(result);
    plan.receiptOf.push(withReceipt ? plan.receipts.length - 1 : -1);
  };
  let seq = lastSeq;
  for (const input of inputs) {
    const origin = input.origin;
    const mark = origin && streams.get(origin.stream);
    if (origin && mark && origin.offset <= mark.offset) {
      done({ event: mark.event, duplicate: true }, false);
      continue;
    }
    const key = input.idempotencyKey;
    const byKey = key === undefined ? undefined : known.get(`k:${key}`);
    const r = input.receipt;
    if (byKey) {
      if (r) plan.receipts.push({ input: r, status: 'duplicate', seq: byKey.seq });
      done({ event: fromKnown(byKey, input), duplicate: true }, r !== undefined);
      continue;
    }
    const digestKey = r?.digest === undefined ? undefined : `d:${r.source}\n${r.digest.toLowerCase()}`;
    const signed = digestKey === undefined ? undefined : known.get(digestKey);
    if (signed) {
      plan.receipts.push({ input: r!, status: 'duplicate', seq: signed.seq });
      done({ event: fromKnown(signed, input), duplicate: true }, true);
      continue;
    }
    const event = makeStoredEvent(++seq, input.channel, input.type, input.data, now, epoch);
    plan.events.push({ seq, channel: input.channel, type: input.type, data: input.data });
    const held: Known = { seq, time: now, channel: input.channel, type: input.type, data: input.data };
    if (key !== undefined) {
      plan.keys.push({ key, seq, keepUntil: now + (input.idempotencyTtlMs ?? 0) });
      known.set(`k:${key}`, held);
    }
    if (origin) {
      streams.set(origin.stream, { offset: origin.offset, event });
      plan.streams.set(origin.stream, { offset: origin.offset, seq });
    }
    if (r) plan.receipts.push({ input: r, status: r.status, seq });
    if (digestKey !== undefined && r!.status === 'accepted') {
      plan.digests.push({ source: r!.source, digest: r!.digest!.toLowerCase(), seq, keepUntil: r!.keepUntil });
      known.set(digestKey, held);
    }
    done({ event, duplicate: false }, r !== undefined);
  }
  return plan;
}

/** The trust line is before the hub: this only keeps a malformed input from reaching SQL. */
function checkInput(input: EventInput): void {
  if (typeof input.channel !== 'string' || typeof input.type !== 'string' || typeof input.data !== 'string') {
    throw new TypeError('an event input needs a string channel, type and data');
  }
  if (input.origin && !Number.isSafeInteger(input.origin.offset)) throw new TypeError('origin.offset must be an integer');
  if (input.receipt?.digest !== undefined && !/^(?:[0-9a-fA-F]{2})*$/.test(input.receipt.digest)) {
    throw new TypeError('a receipt digest must be hex');
  }
}

/** True when the error left the connection unusable (it is then destroyed, not returned to the pool). */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== 'string' || code.startsWith('08') || code === '57P01';
}
