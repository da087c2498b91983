import { quoteSchema } from './postgres-migrations.js';

/*
 * The SQL of PostgresDeliveryStore (postgres-delivery-store.ts). Each step the DeliveryStore
 * specification calls atomic is one statement here (data-modifying CTEs run in the statement's
 * transaction), except a claim: `candidates` then `lease`, in one transaction.
 */

/** Every column of a delivery but its body, then with it. */
const HEAD_COLS =
  'id, endpoint_id, event_seq, msg_id, body_length, status, attempts, schedule_start, next_at, claims, ' +
  'lease_owner, created_at, updated_at, last_status, last_error';
const COLS = HEAD_COLS + ', body';

/** The statements of PostgresDeliveryStore, with the schema's tables named once. */
export function deliveryStatements(schema: string) {
  const s = quoteSchema(schema);
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
    // ordered request locks only its head (lowest pending id, ordered as outbound_pending_fifo is,
    // so the planner never walks the whole table's ids to find it), and only when it is due: a head
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
           WHERE r.ordered AND d.id = (SELECT h.id FROM ${D} h WHERE h.endpoint_id = r.endpoint_id AND h.status = 'pending'
                            ORDER BY h.endpoint_id, h.id LIMIT 1)
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

export type DeliveryStatements = ReturnType<typeof deliveryStatements>;
