import pg from 'pg';
import { ClosedError, HeraldError } from '../core/errors.js';
import { claimWithin } from '../core/delivery-store.js';
import { PRUNE_CHUNK_ROWS } from '../core/limits.js';
import type {
  Attempt,
  ClaimRequest,
  ClaimResult,
  Delivery,
  DeliveryQuery,
  DeliveryStore,
  EndpointRecord,
  FinishedAttempt,
  LeaseHolder,
  NewDelivery,
} from '../core/delivery-store.js';
import { quoteIdent } from './postgres-delivery-migrations.js';

/**
 * milliseconds a call may take before it rejects: past it the node reports the store unavailable
 * instead of stalling the planner, the claims and the API behind a dead or hung server.
 */
export const POSTGRES_DELIVERY_TIMEOUT_MS = 5_000;
/** Deliveries deleted per prune statement (with their attempts), so one prune never holds locks for long. */
const PRUNE_CHUNK_DELIVERIES = PRUNE_CHUNK_ROWS / 2;
/** Times a statement Postgres aborted as a deadlock or a serialization failure is run again. */
const CONFLICT_RETRIES = 3;
/** SQLSTATEs of a deadlock and a serialization failure: the statement is safe to run again. */
const CONFLICT = new Set(['40P01', '40001']);
/**
 * SQLSTATE classes that mean the server cannot serve us now: connection exceptions (08),
 * insufficient resources such as too many connections (53), shutdown and crash (57P), and
 * system errors (58). Any other error the server answered is passed on as it is.
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P|58)/;

export interface PostgresDeliveryStoreOptions {
  /** The connection pool; owned by the caller, who ends it. */
  pool: pg.Pool;
  /** The schema holding the tables (postgres-delivery-migrations.ts); default 'herald'. */
  schema?: string;
  /** The epoch of the log the store follows (message ids carry it). */
  logId: () => Promise<string>;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_seq: string;
  msg_id: string;
  body: string;
  status: Delivery['status'];
  attempts: number;
  schedule_start: number;
  next_at: string;
  claims: number;
  lease_owner: string | null;
  created_at: string;
  updated_at: string;
  last_status: number | null;
  last_error: string | null;
}

/** Every column of a delivery but its body, then with it. */
const HEAD_COLS =
  'id, endpoint_id, event_seq, msg_id, body_length, status, attempts, schedule_start, next_at, claims, ' +
  'lease_owner, created_at, updated_at, last_status, last_error';
const COLS = HEAD_COLS + ', body';

/** bigint columns arrive as strings (node-postgres keeps their precision); every value here fits a double. */
function toDelivery(r: DeliveryRow): Delivery {
  return {
    id: Number(r.id),
    endpointId: r.endpoint_id,
    eventSeq: Number(r.event_seq),
    msgId: r.msg_id,
    body: r.body,
    status: r.status,
    attempts: r.attempts,
    scheduleStart: r.schedule_start,
    nextAt: Number(r.next_at),
    claims: r.claims,
    leaseOwner: r.lease_owner,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    lastStatus: r.last_status,
    lastError: r.last_error,
  };
}

/** The statements, with the schema's tables named once. */
function statements(schema: string) {
  const s = quoteIdent(schema);
  const D = `${s}.outbound_deliveries`;
  const A = `${s}.outbound_attempts`;
  const M = `${s}.outbound_meta`;
  const E = `${s}.outbound_endpoints`;
  const L = `${s}.outbound_leases`;
  const bump = `bump AS (UPDATE ${M} SET v = v + 1 WHERE k = 'endpoints_version')`;
  return {
    meta: `SELECT v FROM ${M} WHERE k = $1`,
    // Every change to endpoints raises the version in its own statement, so in its transaction.
    putEndpoint: `WITH ${bump} INSERT INTO ${E} (id, doc) VALUES ($1, $2::jsonb) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`,
    deleteEndpoint: `WITH ${bump},
        gone AS (DELETE FROM ${D} WHERE endpoint_id = $1 RETURNING id),
        attempts AS (DELETE FROM ${A} WHERE delivery_id IN (SELECT id FROM gone))
      DELETE FROM ${E} WHERE id = $1`,
    // COLLATE "C": ordered by code point, as every other store orders ids, whatever the database's locale.
    listEndpoints: `SELECT doc FROM ${E} ORDER BY id COLLATE "C"`,
    hold: `WITH ${bump} UPDATE ${D} SET status = 'held', lease_owner = NULL, updated_at = $2
      WHERE endpoint_id = $1 AND status = 'pending'`,
    unhold: `WITH ${bump} UPDATE ${D} SET status = 'pending', next_at = $2, updated_at = $2
      WHERE endpoint_id = $1 AND status = 'held'`,
    // Rows and cursor in one statement, so in one transaction. Ids follow the order given
    // (ORDINALITY), which is log order: an ordered endpoint's head is its lowest id.
    enqueue: `WITH ins AS (
        INSERT INTO ${D} (endpoint_id, event_seq, msg_id, body, body_length, status, next_at, claims, lease_owner, created_at, updated_at)
        SELECT endpoint_id, event_seq, msg_id, body, body_length, status, next_at, claims, lease_owner, created_at, created_at
          FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $11::integer[], $5::text[], $6::bigint[], $7::integer[],
                      $8::text[], $9::bigint[])
               WITH ORDINALITY AS u(endpoint_id, event_seq, msg_id, body, body_length, status, next_at, claims, lease_owner, created_at, ord)
         ORDER BY ord
        RETURNING id),
      cursor AS (
        INSERT INTO ${M} (k, v) SELECT 'planned_through', $10::bigint WHERE $10::bigint IS NOT NULL
        ON CONFLICT (k) DO UPDATE SET v = excluded.v)
      SELECT id FROM ins`,
    // The due rows of every request, locked: SKIP LOCKED passes over rows another node's claim
    // holds right now, so two claims never take one delivery and never wait for each other. An
    // ordered request locks only its head (lowest pending id), and only when it is due: a head
    // locked elsewhere yields nothing rather than the row behind it. With each request, the
    // earliest next_at of its other pending rows (what claimWithin's nextDue needs). Bodies stay
    // behind: only the leased rows' are read, by the lease itself.
    candidates: `WITH req AS (
        SELECT * FROM unnest($1::text[], $2::integer[], $3::boolean[]) WITH ORDINALITY AS r(endpoint_id, lim, ordered, ord)),
      picked AS (
        SELECT r.ord, d.* FROM req r CROSS JOIN LATERAL (
          SELECT ${HEAD_COLS} FROM ${D} d
           WHERE NOT r.ordered AND d.endpoint_id = r.endpoint_id AND d.status = 'pending' AND d.next_at <= $4
           ORDER BY d.next_at, d.id LIMIT least(r.lim, $5::integer)
           FOR UPDATE SKIP LOCKED) d
        UNION ALL
        SELECT r.ord, d.* FROM req r CROSS JOIN LATERAL (
          SELECT ${HEAD_COLS} FROM ${D} d
           WHERE r.ordered AND d.id = (SELECT min(h.id) FROM ${D} h WHERE h.endpoint_id = r.endpoint_id AND h.status = 'pending')
             AND d.status = 'pending' AND d.next_at <= $4
           FOR UPDATE SKIP LOCKED) d)
      SELECT r.ord, r.endpoint_id AS req_endpoint,
             (SELECT min(o.next_at) FROM ${D} o
               WHERE o.endpoint_id = r.endpoint_id AND o.status = 'pending' AND o.id NOT IN (SELECT id FROM picked)) AS rest,
             p.${HEAD_COLS.split(', ').join(', p.')}
        FROM req r LEFT JOIN picked p ON p.ord = r.ord
       ORDER BY r.ord, p.next_at, p.id`,
    lease: `UPDATE ${D} SET next_at = $1, claims = claims + 1, lease_owner = $2 WHERE id = ANY($3::bigint[]) RETURNING id, body`,
    // Attempts are history: recorded whatever the token (for deliveries that still exist); the
    // outcome only where the fencing token still holds.
    finish: `WITH u AS (
        SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::integer[], $5::integer[], $6::text[], $7::text[],
                             $8::text[], $9::bigint[], $10::bigint[])
          AS u(id, claim, at, duration_ms, status, response_body, error, outcome, next_at, updated_at)),
      attempts AS (
        INSERT INTO ${A} (delivery_id, at, duration_ms, status, response_body, error)
        SELECT u.id, u.at, u.duration_ms, u.status, u.response_body, u.error FROM u
         WHERE EXISTS (SELECT 1 FROM ${D} d WHERE d.id = u.id))
      UPDATE ${D} d
         SET status = u.outcome, next_at = u.next_at, attempts = d.attempts + 1, lease_owner = NULL,
             updated_at = u.updated_at, last_status = u.status, last_error = u.error
        FROM u WHERE d.id = u.id AND d.claims = u.claim`,
    release: `UPDATE ${D} d SET next_at = $1, lease_owner = NULL, updated_at = $1
        FROM unnest($2::bigint[], $3::integer[]) AS u(id, claim)
       WHERE d.id = u.id AND d.claims = u.claim AND d.status = 'pending'`,
    leaseOwners: `SELECT DISTINCT lease_owner FROM ${D} WHERE status = 'pending' AND lease_owner IS NOT NULL`,
    releaseOwners: `UPDATE ${D} SET next_at = $1, lease_owner = NULL, updated_at = $1
      WHERE status = 'pending' AND lease_owner = ANY($2::text[])`,
    // One statement: a take-over of an expired lease and its holder's late renewal cannot both
    // succeed (the second waits on the row, then re-checks the condition against the first).
    acquireLease: `INSERT INTO ${L} (name, owner, until) VALUES ($1, $2, $3)
      ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
      WHERE ${L}.owner = excluded.owner OR ${L}.until <= $4`,
    releaseLease: `DELETE FROM ${L} WHERE name = $1 AND owner = $2`,
    leaseHolder: `SELECT owner, until FROM ${L} WHERE name = $1 AND until > $2`,
    retry: `WITH u AS (
        UPDATE ${D} SET status = 'pending', next_at = $2, schedule_start = attempts, lease_owner = NULL, updated_at = $2
         WHERE id = $1 AND (status <> 'pending' OR lease_owner IS NULL)
        RETURNING ${COLS})
      SELECT ${COLS} FROM u UNION ALL SELECT ${COLS} FROM ${D} WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)`,
    getDelivery: `SELECT ${COLS}, (
        SELECT coalesce(json_agg(json_build_object('deliveryId', a.delivery_id, 'at', a.at, 'durationMs', a.duration_ms,
                 'status', a.status, 'responseBody', a.response_body, 'error', a.error) ORDER BY a.id), '[]'::json)
          FROM ${A} a WHERE a.delivery_id = d.id) AS attempt_list
      FROM ${D} d WHERE d.id = $1`,
    list: `SELECT ${COLS} FROM ${D} WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
    listByStatus: `SELECT ${COLS} FROM ${D} WHERE endpoint_id = $1 AND status = $4 AND id < $2 ORDER BY id DESC LIMIT $3`,
    // One chunk per statement, so per transaction: rows a concurrent statement holds are skipped
    // (left for the next prune) instead of waited for.
    pruneChunk: `WITH doomed AS (
        DELETE FROM ${D} WHERE id IN (
          SELECT id FROM ${D} WHERE status IN ('delivered', 'dead') AND created_at < $1
           ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING id),
      attempts AS (DELETE FROM ${A} WHERE delivery_id IN (SELECT id FROM doomed))
      SELECT count(*)::integer AS n FROM doomed`,
  };
}

type Statements = ReturnType<typeof statements>;

interface CandidateRow extends Omit<DeliveryRow, 'body'> {
  body_length: number;
  ord: string;
  req_endpoint: string;
  rest: string | null;
}

/**
 * The delivery queue in Postgres, shared by every Herald node on the same database and schema.
 * Each step the specification calls atomic is one statement (data-modifying CTEs) or, for a
 * claim, one transaction: due rows are locked `FOR UPDATE SKIP LOCKED`, walked by the shared
 * claim rules (claimWithin), and the chosen ones leased before the commit, so one node sends
 * each attempt. Durable as far as the server's `synchronous_commit` is.
 */
export class PostgresDeliveryStore implements DeliveryStore {
  readonly durable = true;
  readonly #pool: pg.Pool;
  readonly #sql: Statements;
  readonly #logIdOf: () => Promise<string>;
  #logId: Promise<string> | undefined;
  #closed = false;

  constructor(opts: PostgresDeliveryStoreOptions) {
    this.#pool = opts.pool;
    this.#sql = statements(opts.schema ?? 'herald');
    this.#logIdOf = opts.logId;
  }

  /**
   * Runs `fn`: rejects at once when closed, and with BACKEND_UNAVAILABLE when the server cannot
   * be reached or does not answer in time. A deadlock or serialization failure (a bulk change
   * crossing a claim's or an outcome's rows) runs `fn` again; any other error the server
   * answered is passed on as it is.
   */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('The delivery store'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(unavailable()), POSTGRES_DELIVERY_TIMEOUT_MS);
      const attempt = (left: number): Promise<T> =>
        fn().catch((err: unknown) => {
          if (left > 0 && err instanceof pg.DatabaseError && CONFLICT.has(err.code ?? '')) return attempt(left - 1);
          throw err;
        });
      attempt(CONFLICT_RETRIES).then(
        (v) => (clearTimeout(timer), resolve(v)),
        (err: unknown) => (clearTimeout(timer), reject(classify(err))),
      );
    });
  }

  #query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return this.#run(() => this.#pool.query<R>(timed(text, values)));
  }

  /** Runs `fn` in a transaction on one connection of the pool. */
  #transaction<T>(fn: (query: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>) => Promise<T>): Promise<T> {
    return this.#run(async () => {
      const client = await this.#pool.connect();
      const query = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
        client.query<R>(timed(text, values));
      // A connection whose state is unknown (a failed ROLLBACK) is destroyed, never reused.
      let broken: Error | undefined;
      try {
        await query('BEGIN');
        const v = await fn(query);
        await query('COMMIT');
        return v;
      } catch (err) {
        await query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.release(broken);
      }
    });
  }

  logId(): Promise<string> {
    if (this.#closed) return Promise.reject(new ClosedError('The delivery store'));
    const id = (this.#logId ??= this.#logIdOf());
    id.catch(() => {
      if (this.#logId === id) this.#logId = undefined;
    });
    return id;
  }

  async putEndpoint(e: EndpointRecord): Promise<void> {
    await this.#query(this.#sql.putEndpoint, [e.id, JSON.stringify(e)]);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    return ((await this.#query(this.#sql.deleteEndpoint, [id])).rowCount ?? 0) > 0;
  }

  async listEndpoints(): Promise<EndpointRecord[]> {
    const { rows } = await this.#query<{ doc: EndpointRecord }>(this.#sql.listEndpoints, []);
    return rows.map((r) => r.doc);
  }

  async endpointsVersion(): Promise<number> {
    const { rows } = await this.#query<{ v: string }>(this.#sql.meta, ['endpoints_version']);
    return Number(rows[0]?.v ?? 0);
  }

  async plannedThrough(): Promise<number | undefined> {
    const { rows } = await this.#query<{ v: string }>(this.#sql.meta, ['planned_through']);
    return rows[0] === undefined ? undefined : Number(rows[0].v);
  }

  async enqueue(rows: readonly NewDelivery[], plannedThrough?: number): Promise<Delivery[]> {
    const leases = rows.map((r) => (r.status === 'pending' ? r.lease : undefined));
    const { rows: ids } = await this.#query<{ id: string }>(this.#sql.enqueue, [
      rows.map((r) => r.endpointId),
      rows.map((r) => r.eventSeq),
      rows.map((r) => r.msgId),
      rows.map((r) => r.body),
      rows.map((r) => r.status),
      rows.map((r, i) => leases[i]?.until ?? r.nextAt),
      leases.map((l) => (l ? 1 : 0)),
      leases.map((l) => l?.owner ?? null),
      rows.map((r) => r.createdAt),
      plannedThrough ?? null,
      rows.map((r) => r.body.length),
    ]);
    // Ids grow in the order the rows were given (ORDINALITY): the sorted ids are theirs, in order.
    const sorted = ids.map((r) => Number(r.id)).sort((a, b) => a - b);
    const leased: Delivery[] = [];
    rows.forEach((r, i) => {
      const lease = leases[i];
      if (!lease) return;
      leased.push({
        id: sorted[i]!,
        endpointId: r.endpointId,
        eventSeq: r.eventSeq,
        msgId: r.msgId,
        body: r.body,
        status: 'pending',
        attempts: 0,
        scheduleStart: 0,
        nextAt: lease.until,
        claims: 1,
        leaseOwner: lease.owner,
        createdAt: r.createdAt,
        updatedAt: r.createdAt,
        lastStatus: null,
        lastError: null,
      });
    });
    return leased;
  }

  async claim(
    requests: readonly ClaimRequest[],
    now: number,
    leaseMs: number,
    owner: string,
    max = Infinity,
    maxBytes = Infinity,
  ): Promise<ClaimResult> {
    if (this.#closed) throw new ClosedError('The delivery store');
    if (requests.length === 0) return { claimed: [], nextDueAt: undefined, cut: false };
    const until = now + leaseMs;
    return this.#transaction(async (query) => {
      const { rows } = await query<CandidateRow>(this.#sql.candidates, [
        requests.map((r) => r.endpointId),
        requests.map((r) => r.limit),
        requests.map((r) => r.ordered),
        now,
        Number.isFinite(max) ? max : null,
      ]);
      // Locked rows and the earliest other due time, by endpoint (a repeated endpoint shares them).
      const due = new Map<string, CandidateRow[]>();
      const rest = new Map<string, number | undefined>();
      const seen = new Set<string>();
      for (const r of rows) {
        if (!due.has(r.req_endpoint)) {
          due.set(r.req_endpoint, []);
          rest.set(r.req_endpoint, r.rest === null ? undefined : Number(r.rest));
        }
        if (r.id !== null && !seen.has(r.id)) {
          seen.add(r.id);
          due.get(r.req_endpoint)!.push(r);
        }
      }
      const leased = new Set<string>();
      const leasedBy = new Set<string>();
      const result = claimWithin<CandidateRow>(requests, max, maxBytes, {
        due: (req, limit) => (due.get(req.endpointId) ?? []).filter((r) => !leased.has(r.id)).slice(0, limit),
        bodyBytes: (r) => r.body_length,
        lease: (r) => {
          leased.add(r.id);
          leasedBy.add(r.endpoint_id);
          return toDelivery({ ...r, body: '', next_at: String(until), claims: r.claims + 1, lease_owner: owner });
        },
        // Once leased, a row is pending again at the lease's end: as the other stores read it back.
        nextDue: (endpointId) => {
          const other = rest.get(endpointId);
          const mine = leasedBy.has(endpointId) ? until : undefined;
          if (other === undefined) return mine;
          return mine === undefined ? other : Math.min(other, mine);
        },
      });
      if (leased.size === 0) return result;
      const { rows: bodies } = await query<{ id: string; body: string }>(this.#sql.lease, [until, owner, [...leased]]);
      const body = new Map(bodies.map((b) => [Number(b.id), b.body]));
      return { ...result, claimed: result.claimed.map((d) => ({ ...d, body: body.get(d.id)! })) };
    });
  }

  async finish(results: readonly FinishedAttempt[]): Promise<void> {
    await this.#query(this.#sql.finish, [
      results.map((r) => r.id),
      results.map((r) => r.claim),
      results.map((r) => r.attempt.at),
      results.map((r) => r.attempt.durationMs),
      results.map((r) => r.attempt.status),
      results.map((r) => r.attempt.responseBody),
      results.map((r) => r.attempt.error),
      results.map((r) => r.outcome.status),
      results.map((r) => (r.outcome.status === 'pending' ? r.outcome.nextAt : r.attempt.at + r.attempt.durationMs)),
      results.map((r) => r.attempt.at + r.attempt.durationMs),
    ]);
  }

  async release(claims: readonly { id: number; claim: number }[], now: number): Promise<void> {
    await this.#query(this.#sql.release, [now, claims.map((c) => c.id), claims.map((c) => c.claim)]);
  }

  async leaseOwners(): Promise<string[]> {
    const { rows } = await this.#query<{ lease_owner: string }>(this.#sql.leaseOwners, []);
    return rows.map((r) => r.lease_owner);
  }

  async releaseOwners(owners: readonly string[], now: number): Promise<number> {
    return (await this.#query(this.#sql.releaseOwners, [now, owners])).rowCount ?? 0;
  }

  async acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    return ((await this.#query(this.#sql.acquireLease, [name, owner, now + ttlMs, now])).rowCount ?? 0) > 0;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.#query(this.#sql.releaseLease, [name, owner]);
  }

  async leaseHolder(name: string, now: number): Promise<LeaseHolder | undefined> {
    const { rows } = await this.#query<{ owner: string; until: string }>(this.#sql.leaseHolder, [name, now]);
    return rows[0] && { owner: rows[0].owner, until: Number(rows[0].until) };
  }

  async hold(endpointId: string, now: number): Promise<number> {
    return (await this.#query(this.#sql.hold, [endpointId, now])).rowCount ?? 0;
  }

  async unhold(endpointId: string, now: number): Promise<number> {
    return (await this.#query(this.#sql.unhold, [endpointId, now])).rowCount ?? 0;
  }

  async retry(id: number, now: number): Promise<Delivery | undefined> {
    const { rows } = await this.#query<DeliveryRow>(this.#sql.retry, [id, now]);
    return rows[0] && toDelivery(rows[0]);
  }

  async getDelivery(id: number): Promise<{ delivery: Delivery; attempts: Attempt[] } | undefined> {
    const { rows } = await this.#query<DeliveryRow & { attempt_list: Attempt[] }>(this.#sql.getDelivery, [id]);
    const row = rows[0];
    return row && { delivery: toDelivery(row), attempts: row.attempt_list };
  }

  async listDeliveries(endpointId: string, q: DeliveryQuery): Promise<Delivery[]> {
    const before = q.before ?? Number.MAX_SAFE_INTEGER;
    const { rows } = q.status
      ? await this.#query<DeliveryRow>(this.#sql.listByStatus, [endpointId, before, q.limit, q.status])
      : await this.#query<DeliveryRow>(this.#sql.list, [endpointId, before, q.limit]);
    return rows.map(toDelivery);
  }

  async prune(before: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const { rows } = await this.#query<{ n: number }>(this.#sql.pruneChunk, [before, PRUNE_CHUNK_DELIVERIES]);
      deleted += rows[0]!.n;
      if (rows[0]!.n < PRUNE_CHUNK_DELIVERIES) return deleted;
    }
  }

  /** Idempotent; the pool stays open (its owner ends it). */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/**
 * A query that fails on its own after the timeout (node-postgres's `query_timeout`, missing from
 * its types): the pool then destroys the connection instead of lending out one that still waits
 * for a hung server's answer.
 */
function timed(text: string, values: unknown[]): pg.QueryConfig {
  const config: pg.QueryConfig & { query_timeout: number } = { text, values, query_timeout: POSTGRES_DELIVERY_TIMEOUT_MS };
  return config;
}

/** What the caller sees of an error: the server's own answers as they are, anything else as unavailable. */
function classify(err: unknown): unknown {
  if (err instanceof HeraldError) return err;
  if (err instanceof pg.DatabaseError && !UNAVAILABLE_SQLSTATE.test(err.code ?? '')) return err;
  return unavailable(err);
}

function unavailable(cause?: unknown): HeraldError {
  const err = new HeraldError('BACKEND_UNAVAILABLE', 'The delivery store (Postgres) is unreachable.');
  if (cause !== undefined) err.cause = cause;
  return err;
}
