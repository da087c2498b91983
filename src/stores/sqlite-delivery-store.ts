import type Database from 'better-sqlite3';
import { ClosedError } from '../core/errors.js';
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
import { sqliteLeases, type SqliteLeases } from './sqlite-leases.js';

/** Deliveries examined per prune transaction: each costs two deletes (its attempts, then itself). */
const PRUNE_CHUNK_DELIVERIES = PRUNE_CHUNK_ROWS / 2;

interface DeliveryRow {
  id: number;
  endpoint_id: string;
  event_seq: number;
  msg_id: string;
  body: string;
  status: Delivery['status'];
  attempts: number;
  schedule_start: number;
  next_at: number;
  claims: number;
  lease_owner: string | null;
  created_at: number;
  updated_at: number;
  last_status: number | null;
  last_error: string | null;
}

function toDelivery(r: DeliveryRow): Delivery {
  return {
    id: r.id,
    endpointId: r.endpoint_id,
    eventSeq: r.event_seq,
    msgId: r.msg_id,
    body: r.body,
    status: r.status,
    attempts: r.attempts,
    scheduleStart: r.schedule_start,
    nextAt: r.next_at,
    claims: r.claims,
    leaseOwner: r.lease_owner,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
  };
}

/**
 * The delivery queue in SQLite, in the same database file as the event log (the connection is
 * the SqliteEventStore's, or any other), so the log and what is owed from it survive together.
 *
 * Claims run in `BEGIN IMMEDIATE` transactions: SQLite's write lock serialises them across every
 * connection and process sharing the file, so the read-then-update of a claim is atomic.
 * Its tables are made by the file's migrations (sqlite-migrations.ts), like every other table.
 */
export class SqliteDeliveryStore implements DeliveryStore {
  readonly durable: boolean;
  readonly #db: Database.Database;
  readonly #s: Record<string, Database.Statement<unknown[]>>;
  readonly #enqueueTx: (rows: readonly NewDelivery[], plannedThrough?: number) => Delivery[];
  readonly #claimTx: Database.Transaction<
    (requests: readonly ClaimRequest[], now: number, leaseMs: number, owner: string, max: number, maxBytes: number) => ClaimResult
  >;
  readonly #finishTx: Database.Transaction<(results: readonly FinishedAttempt[]) => void>;
  readonly #releaseTx: Database.Transaction<(claims: readonly { id: number; claim: number }[], now: number) => void>;
  readonly #deleteEndpointTx: (id: string) => boolean;
  readonly #putEndpointTx: (e: EndpointRecord) => void;
  readonly #holdTx: (endpointId: string, now: number) => number;
  readonly #unholdTx: (endpointId: string, now: number) => number;
  readonly #pruneChunk: Database.Transaction<(after: number, before: number) => { deleted: number; next: number | undefined }>;
  readonly #sync: (() => Promise<void>) | undefined;
  readonly #leases: SqliteLeases;
  /** Whether the connection fsyncs every commit itself (`synchronous` FULL or above), read once. */
  readonly #commitsFsync: boolean;
  #closed = false;

  /**
   * `db` is migrated (migrateSqlite) and stays open when this store closes: its owner (the event store) closes it. `sync`
   * resolves once every commit so far survives a power loss (SqliteEventStore.sync): awaited
   * after the writes an API acknowledges (endpoints, hold, retry), when the connection itself
   * does not fsync its commits.
   */
  constructor(db: Database.Database, opts: { durable?: boolean; sync?: () => Promise<void> } = {}) {
    this.#db = db;
    this.#sync = opts.sync;
    this.#commitsFsync = (db.pragma('synchronous', { simple: true }) as number) >= 2;
    this.durable = opts.durable ?? db.name !== ':memory:';
    const cols =
      'id, endpoint_id, event_seq, msg_id, body, status, attempts, schedule_start, next_at, claims, ' +
      'lease_owner, created_at, updated_at, last_status, last_error';
    const s: Record<string, Database.Statement<unknown[]>> = (this.#s = {
      meta: db.prepare('SELECT v FROM outbound_meta WHERE k = ?'),
      bumpEndpoints: db.prepare(`UPDATE outbound_meta SET v = CAST(v AS INTEGER) + 1 WHERE k = 'endpoints_version'`),
      setMeta: db.prepare('INSERT INTO outbound_meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'),
      putEndpoint: db.prepare(
        'INSERT INTO outbound_endpoints (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc',
      ),
      listEndpoints: db.prepare('SELECT doc FROM outbound_endpoints ORDER BY id'),
      deleteEndpoint: db.prepare('DELETE FROM outbound_endpoints WHERE id = ?'),
      deleteEndpointAttempts: db.prepare(
        'DELETE FROM outbound_attempts WHERE delivery_id IN (SELECT id FROM outbound_deliveries WHERE endpoint_id = ?)',
      ),
      deleteEndpointDeliveries: db.prepare('DELETE FROM outbound_deliveries WHERE endpoint_id = ?'),
      insert: db.prepare(
        `INSERT INTO outbound_deliveries
           (endpoint_id, event_seq, msg_id, body, status, next_at, claims, lease_owner, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      dueParallel: db.prepare(
        `SELECT ${cols} FROM outbound_deliveries
          WHERE endpoint_id = ? AND status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`,
      ),
      head: db.prepare(
        `SELECT ${cols} FROM outbound_deliveries WHERE endpoint_id = ? AND status = 'pending' ORDER BY id LIMIT 1`,
      ),
      nextDue: db.prepare(
        `SELECT MIN(next_at) AS at FROM outbound_deliveries WHERE endpoint_id = ? AND status = 'pending'`,
      ),
      lease: db.prepare(
        // updated_at is left alone: a claim is not a change an operator sees, and every index
        // a claim does not touch is a page the commit does not write.
        'UPDATE outbound_deliveries SET next_at = ?, claims = claims + 1, lease_owner = ? WHERE id = ?',
      ),
      attempt: db.prepare(
        `INSERT INTO outbound_attempts (delivery_id, at, duration_ms, status, response_body, error)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      outcome: db.prepare(
        `UPDATE outbound_deliveries
            SET status = ?, next_at = ?, attempts = attempts + 1, lease_owner = NULL, updated_at = ?,
                last_status = ?, last_error = ?
          WHERE id = ? AND claims = ?`,
      ),
      release: db.prepare(
        `UPDATE outbound_deliveries SET next_at = ?, lease_owner = NULL, updated_at = ?
          WHERE id = ? AND claims = ? AND status = 'pending'`,
      ),
      leaseOwners: db.prepare(
        `SELECT DISTINCT lease_owner FROM outbound_deliveries WHERE status = 'pending' AND lease_owner IS NOT NULL`,
      ),
      releaseOwner: db.prepare(
        `UPDATE outbound_deliveries SET next_at = ?, lease_owner = NULL, updated_at = ?
          WHERE status = 'pending' AND lease_owner = ?`,
      ),
      hold: db.prepare(
        `UPDATE outbound_deliveries SET status = 'held', lease_owner = NULL, updated_at = ?
          WHERE endpoint_id = ? AND status = 'pending'`,
      ),
      unhold: db.prepare(
        `UPDATE outbound_deliveries SET status = 'pending', next_at = ?, updated_at = ?
          WHERE endpoint_id = ? AND status = 'held'`,
      ),
      retry: db.prepare(
        `UPDATE outbound_deliveries
            SET status = 'pending', next_at = ?, schedule_start = attempts, lease_owner = NULL, updated_at = ?
          WHERE id = ? AND (status <> 'pending' OR lease_owner IS NULL)`,
      ),
      get: db.prepare(`SELECT ${cols} FROM outbound_deliveries WHERE id = ?`),
      attempts: db.prepare(
        `SELECT delivery_id, at, duration_ms, status, response_body, error
           FROM outbound_attempts WHERE delivery_id = ? ORDER BY id`,
      ),
      list: db.prepare(
        `SELECT ${cols} FROM outbound_deliveries WHERE endpoint_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
      ),
      listByStatus: db.prepare(
        `SELECT ${cols} FROM outbound_deliveries
          WHERE endpoint_id = ? AND status = ? AND id < ? ORDER BY id DESC LIMIT ?`,
      ),
      // Ids grow with created_at (rows are inserted in planning order), so prune walks the
      // primary key from the oldest row and stops at the first one created after the cutoff.
      oldest: db.prepare('SELECT id, status, created_at FROM outbound_deliveries WHERE id > ? ORDER BY id LIMIT ?'),
      deleteAttempts: db.prepare('DELETE FROM outbound_attempts WHERE delivery_id = ?'),
      deleteDelivery: db.prepare('DELETE FROM outbound_deliveries WHERE id = ?'),
    });

    this.#leases = sqliteLeases(db);
    this.#enqueueTx = db.transaction((rows: readonly NewDelivery[], plannedThrough?: number) => {
      const leased: Delivery[] = [];
      for (const r of rows) {
        const lease = r.status === 'pending' ? r.lease : undefined;
        const nextAt = lease ? lease.until : r.nextAt;
        const owner = lease ? lease.owner : null;
        const { lastInsertRowid } = s.insert!.run(
          r.endpointId, r.eventSeq, r.msgId, r.body, r.status, nextAt, lease ? 1 : 0, owner, r.createdAt, r.createdAt,
        );
        if (lease) leased.push(claimedOnEnqueue(Number(lastInsertRowid), r, lease));
      }
      if (plannedThrough !== undefined) s.setMeta!.run('planned_through', String(plannedThrough));
      return leased;
    });
    this.#claimTx = db.transaction(
      (requests: readonly ClaimRequest[], now: number, leaseMs: number, owner: string, max: number, maxBytes: number) =>
        claimWithin<DeliveryRow>(requests, max, maxBytes, {
          due: (req, limit) => {
            if (req.ordered) {
              const head = s.head!.get(req.endpointId) as DeliveryRow | undefined;
              return head && head.next_at <= now ? [head] : [];
            }
            return s.dueParallel!.all(req.endpointId, now, limit) as DeliveryRow[];
          },
          bodyBytes: (r) => r.body.length,
          lease: (r) => {
            s.lease!.run(now + leaseMs, owner, r.id);
            return toDelivery({ ...r, next_at: now + leaseMs, claims: r.claims + 1, lease_owner: owner });
          },
          nextDue: (endpointId) => (s.nextDue!.get(endpointId) as { at: number | null }).at ?? undefined,
        }),
    );
    this.#finishTx = db.transaction((results: readonly FinishedAttempt[]) => {
      for (const { id, claim, attempt: a, outcome } of results) {
        s.attempt!.run(id, a.at, a.durationMs, a.status, a.responseBody, a.error);
        const nextAt = outcome.status === 'pending' ? outcome.nextAt : a.at + a.durationMs;
        s.outcome!.run(outcome.status, nextAt, a.at + a.durationMs, a.status, a.error, id, claim);
      }
    });
    this.#releaseTx = db.transaction((claims: readonly { id: number; claim: number }[], now: number) => {
      for (const c of claims) s.release!.run(now, now, c.id, c.claim);
    });
    this.#pruneChunk = db.transaction((after: number, before: number) => {
      const rows = s.oldest!.all(after, PRUNE_CHUNK_DELIVERIES) as { id: number; status: string; created_at: number }[];
      let deleted = 0;
      for (const r of rows) {
        if (r.created_at >= before) return { deleted, next: undefined };
        if (r.status !== 'delivered' && r.status !== 'dead') continue;
        s.deleteAttempts!.run(r.id);
        s.deleteDelivery!.run(r.id);
        deleted++;
      }
      return { deleted, next: rows.length < PRUNE_CHUNK_DELIVERIES ? undefined : rows[rows.length - 1]!.id };
    });
    // Every change to endpoints raises the endpoints version in its own transaction.
    this.#deleteEndpointTx = db.transaction((id: string) => {
      s.deleteEndpointAttempts!.run(id);
      s.deleteEndpointDeliveries!.run(id);
      s.bumpEndpoints!.run();
      return s.deleteEndpoint!.run(id).changes > 0;
    });
    this.#putEndpointTx = db.transaction((e: EndpointRecord) => {
      s.putEndpoint!.run(e.id, JSON.stringify(e));
      s.bumpEndpoints!.run();
    });
    this.#holdTx = db.transaction((endpointId: string, now: number) => {
      s.bumpEndpoints!.run();
      return s.hold!.run(now, endpointId).changes;
    });
    this.#unholdTx = db.transaction((endpointId: string, now: number) => {
      s.bumpEndpoints!.run();
      return s.unhold!.run(now, now, endpointId).changes;
    });
  }

  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError('The delivery store'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Runs queue bookkeeping (plan, claim, finish, release) without an fsync of its own. Nothing is
   * lost by it: a process crash keeps every commit either way (WAL), and after a power loss the
   * WAL is a prefix of the commit order, cut at the last fsync'd commit (an event append, which
   * waits for its fsync). What falls off the end is re-derived: rows and the planning cursor go
   * together, so the planner plans those events again from the log; a lost claim or outcome
   * means the delivery is sent again, which at-least-once allows. This takes the fsyncs off
   * the per-delivery path (about 3 ms each here). On the event store's connection this is a
   * plain run: it commits at NORMAL and fsyncs apart (SqliteEventStore.sync).
   */
  #relaxed<T>(fn: () => T): Promise<T> {
    if (!this.#commitsFsync) return this.#run(fn);
    return this.#run(() => {
      const level = this.#db.pragma('synchronous', { simple: true }) as number;
      this.#db.pragma('synchronous = NORMAL');
      try {
        return fn();
      } finally {
        this.#db.pragma(`synchronous = ${level}`);
      }
    });
  }

  logId(): Promise<string> {
    return this.#run(() => (this.#s.meta!.get('log_id') as { v: string }).v);
  }

  /** Runs a write an API acknowledges, and resolves once it survives a power loss. */
  #durable<T>(fn: () => T): Promise<T> {
    const sync = this.#sync;
    const done = this.#run(fn);
    return sync ? done.then(async (v) => (await sync(), v)) : done;
  }

  putEndpoint(e: EndpointRecord): Promise<void> {
    return this.#durable(() => this.#putEndpointTx(e));
  }

  deleteEndpoint(id: string): Promise<boolean> {
    return this.#durable(() => this.#deleteEndpointTx(id));
  }

  listEndpoints(): Promise<EndpointRecord[]> {
    return this.#run(() =>
      (this.#s.listEndpoints!.all() as { doc: string }[]).map((r) => JSON.parse(r.doc) as EndpointRecord),
    );
  }

  endpointsVersion(): Promise<number> {
    return this.#run(() => Number((this.#s.meta!.get('endpoints_version') as { v: string } | undefined)?.v ?? 0));
  }

  plannedThrough(): Promise<number | undefined> {
    return this.#run(() => {
      const row = this.#s.meta!.get('planned_through') as { v: string } | undefined;
      return row === undefined ? undefined : Number(row.v);
    });
  }

  enqueue(rows: readonly NewDelivery[], plannedThrough?: number): Promise<Delivery[]> {
    return this.#relaxed(() => this.#enqueueTx(rows, plannedThrough));
  }

  claim(
    requests: readonly ClaimRequest[],
    now: number,
    leaseMs: number,
    owner: string,
    max = Infinity,
    maxBytes = Infinity,
  ): Promise<ClaimResult> {
    return this.#relaxed(() => this.#claimTx.immediate(requests, now, leaseMs, owner, max, maxBytes));
  }

  finish(results: readonly FinishedAttempt[]): Promise<void> {
    return this.#relaxed(() => this.#finishTx.immediate(results));
  }

  release(claims: readonly { id: number; claim: number }[], now: number): Promise<void> {
    return this.#relaxed(() => this.#releaseTx.immediate(claims, now));
  }

  leaseOwners(): Promise<string[]> {
    return this.#run(() => (this.#s.leaseOwners!.all() as { lease_owner: string }[]).map((r) => r.lease_owner));
  }

  releaseOwners(owners: readonly string[], now: number): Promise<number> {
    return this.#run(() =>
      this.#db.transaction(() => owners.reduce((n, o) => n + this.#s.releaseOwner!.run(now, now, o).changes, 0))(),
    );
  }

  acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<boolean> {
    return this.#run(() => this.#leases.acquire(name, owner, now, ttlMs));
  }

  releaseLease(name: string, owner: string): Promise<void> {
    return this.#run(() => this.#leases.release(name, owner));
  }

  leaseHolder(name: string, now: number): Promise<LeaseHolder | undefined> {
    return this.#run(() => this.#leases.holder(name, now));
  }

  hold(endpointId: string, now: number): Promise<number> {
    return this.#durable(() => this.#holdTx(endpointId, now));
  }

  unhold(endpointId: string, now: number): Promise<number> {
    return this.#durable(() => this.#unholdTx(endpointId, now));
  }

  retry(id: number, now: number): Promise<Delivery | undefined> {
    return this.#durable(() => {
      this.#s.retry!.run(now, now, id);
      const row = this.#s.get!.get(id) as DeliveryRow | undefined;
      return row && toDelivery(row);
    });
  }

  getDelivery(id: number): Promise<{ delivery: Delivery; attempts: Attempt[] } | undefined> {
    return this.#run(() => {
      const row = this.#s.get!.get(id) as DeliveryRow | undefined;
      if (!row) return undefined;
      const attempts = (this.#s.attempts!.all(id) as Record<string, unknown>[]).map(
        (a): Attempt => ({
          deliveryId: a.delivery_id as number,
          at: a.at as number,
          durationMs: a.duration_ms as number,
          status: a.status as number | null,
          responseBody: a.response_body as string,
          error: a.error as string | null,
        }),
      );
      return { delivery: toDelivery(row), attempts };
    });
  }

  listDeliveries(endpointId: string, q: DeliveryQuery): Promise<Delivery[]> {
    return this.#run(() => {
      const before = q.before ?? Number.MAX_SAFE_INTEGER;
      const rows = (
        q.status
          ? this.#s.listByStatus!.all(endpointId, q.status, before, q.limit)
          : this.#s.list!.all(endpointId, before, q.limit)
      ) as DeliveryRow[];
      return rows.map(toDelivery);
    });
  }

  prune(before: number): Promise<number> {
    return this.#run(() => {
      let deleted = 0;
      let after: number | undefined = 0;
      while (after !== undefined) {
        // IMMEDIATE: it reads, then deletes; with several processes on the file (workers) a
        // deferred one could fail with SQLITE_BUSY instead of waiting its turn (busy_timeout).
        const r = this.#pruneChunk.immediate(after, before);
        deleted += r.deleted;
        after = r.next;
      }
      return deleted;
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
