import type pg from 'pg';

/**
 * The delivery store's tables in Postgres (PostgresDeliveryStore), as versioned steps applied in
 * order after the log's own. Each step's `sql` names its tables unqualified: it runs in one
 * transaction with `search_path` set to the backend's schema, so one database can hold several
 * Herald backends side by side.
 *
 * Never edit a released step: add one.
 */
export interface PostgresMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const DELIVERY_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'outbound endpoints, deliveries, attempts, the planning cursor and named leases',
    sql: `
      -- planned_through (absent before the first plan) and endpoints_version (raised in the
      -- transaction of every change to endpoints), one row each so the two never contend.
      CREATE TABLE outbound_meta (k text PRIMARY KEY, v bigint NOT NULL);
      INSERT INTO outbound_meta (k, v) VALUES ('endpoints_version', 0);
      CREATE TABLE outbound_endpoints (id text PRIMARY KEY, doc jsonb NOT NULL);
      CREATE TABLE outbound_deliveries (
        id             bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        endpoint_id    text    NOT NULL,
        event_seq      bigint  NOT NULL,
        msg_id         text    NOT NULL,
        body           text    NOT NULL,
        -- body.length as the planner measured it, so a claim bounds its bytes without reading bodies
        body_length    integer NOT NULL,
        status         text    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'held')),
        attempts       integer NOT NULL DEFAULT 0,
        schedule_start integer NOT NULL DEFAULT 0,
        next_at        bigint  NOT NULL,
        claims         integer NOT NULL DEFAULT 0,
        lease_owner    text,
        created_at     bigint  NOT NULL,
        updated_at     bigint  NOT NULL,
        last_status    integer,
        last_error     text
      );
      -- Due work is looked up among pending rows only, so this index is the size of the queue,
      -- not of the history.
      CREATE INDEX outbound_pending_due ON outbound_deliveries (endpoint_id, next_at, id) WHERE status = 'pending';
      -- An ordered endpoint's head: its lowest pending id, found without walking the history.
      CREATE INDEX outbound_pending_fifo ON outbound_deliveries (endpoint_id, id) WHERE status = 'pending';
      -- The delivery log by status.
      CREATE INDEX outbound_by_status ON outbound_deliveries (endpoint_id, status, id);
      CREATE INDEX outbound_by_endpoint ON outbound_deliveries (endpoint_id, id);
      -- What prune deletes, oldest first.
      CREATE INDEX outbound_finished ON outbound_deliveries (created_at, id) WHERE status IN ('delivered', 'dead');
      CREATE INDEX outbound_leased ON outbound_deliveries (lease_owner) WHERE status = 'pending' AND lease_owner IS NOT NULL;
      CREATE TABLE outbound_attempts (
        id            bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_id   bigint  NOT NULL,
        at            bigint  NOT NULL,
        duration_ms   integer NOT NULL,
        status        integer,
        response_body text    NOT NULL,
        error         text
      );
      CREATE INDEX outbound_attempts_by_delivery ON outbound_attempts (delivery_id, id);
      CREATE TABLE outbound_leases (name text PRIMARY KEY, owner text NOT NULL, until bigint NOT NULL);
    `,
  },
];

/** A schema name as a quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Applies the steps of `list` not yet recorded in `<schema>.delivery_migrations`, each in its
 * own transaction. Every transaction first takes one advisory lock per schema, so nodes starting
 * together apply each step once: the second waits, then finds it recorded.
 */
export async function applyDeliveryMigrations(
  pool: pg.Pool,
  schema: string,
  list: readonly PostgresMigration[] = DELIVERY_MIGRATIONS,
): Promise<void> {
  const s = quoteIdent(schema);
  for (const step of list) {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}.delivery_migrations`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${s}.delivery_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const done = await client.query(`SELECT 1 FROM ${s}.delivery_migrations WHERE version = $1`, [step.version]);
      if (done.rowCount === 0) {
        await client.query(`SET LOCAL search_path TO ${s}`);
        await client.query(step.sql);
        await client.query(`INSERT INTO ${s}.delivery_migrations (version, name) VALUES ($1, $2)`, [step.version, step.name]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.release(broken);
    }
  }
}
