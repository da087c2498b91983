import pg from 'pg';
import { ClosedError, HeraldError } from '../core/errors.js';
import { claimedOnEnqueue, claimWithin } from '../core/delivery-store.js';
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
import { deliveryStatements, type DeliveryStatements } from './postgres-delivery-statements.js';

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
  readonly #sql: DeliveryStatements;
  readonly #logIdOf: () => Promise<string>;
  #logId: Promise<string> | undefined;
  #closed = false;

  constructor(opts: PostgresDeliveryStoreOptions) {
    this.#pool = opts.pool;
    this.#sql = deliveryStatements(opts.schema ?? 'herald');
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
      leased.push(claimedOnEnqueue(sorted[i]!, r, lease));
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
