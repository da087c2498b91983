import type { PostgresMigrationSet } from './postgres-migrations.js';

/**
 * The delivery store's tables in Postgres (PostgresDeliveryStore): the `delivery` set that
 * `migratePostgres` (src/stores/postgres-migrations.ts) applies after the log's. Each step's SQL
 * names its tables unqualified and runs with `search_path` set to the backend's schema, so one
 * database can hold several Herald backends side by side.
 *
 * Never edit a released step: add one.
 */
export const POSTGRES_DELIVERY_MIGRATIONS: PostgresMigrationSet = {
  name: 'delivery',
  steps: [
    {
      // outbound endpoints, deliveries, attempts, the planning cursor and named leases
      version: 1,
      async up(client, schema) {
        await client.query(`SET LOCAL search_path TO ${schema}`);
        await client.query(`
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
    `);
      },
    },
  ],
};
