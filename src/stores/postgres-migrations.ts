import type pg from 'pg';
import { newEpoch } from '../core/position.js';
import { POSTGRES_DELIVERY_MIGRATIONS } from './postgres-delivery-migrations.js';

/**
 * One step of a Postgres schema. `up` runs inside the transaction that records the step in
 * `schema_migrations`, under the migration lock, so a step is applied entirely or not at all,
 * and once, however many nodes start at the same time. `schema` is the quoted schema name.
 */
export interface PostgresMigration {
  readonly version: number;
  readonly up: (client: pg.PoolClient, schema: string) => Promise<void>;
}

/**
 * A named, independently versioned list of steps: the log's (`log`, in this file) and the
 * delivery store's. Sets are applied in the order `migratePostgres` is given them; versions
 * count from 1 within a set. Never edit a released step: add one.
 */
export interface PostgresMigrationSet {
  readonly name: string;
  readonly steps: readonly PostgresMigration[];
}

/**
 * The log: events, their idempotency keys, inbound receipts and digests, stream positions
 * (Kafka), and the two one-row tables: `log_head` (the last seq handed out; every append locks
 * it, which is what puts seqs in commit order) and `log_meta` (the epoch, made here once, and the
 * prune watermark, kept apart so a prune never waits on an append's lock).
 */
export const POSTGRES_LOG_MIGRATIONS: PostgresMigrationSet = {
  name: 'log',
  steps: [
    {
      version: 1,
      async up(client, s) {
        await client.query(`
          CREATE TABLE ${s}.events (
            seq     bigint PRIMARY KEY,
            channel text   NOT NULL,
            type    text   NOT NULL,
            data    text   NOT NULL,
            time    bigint NOT NULL
          );
          CREATE INDEX events_by_channel ON ${s}.events (channel, seq);
          CREATE INDEX events_by_time ON ${s}.events (time);
          CREATE TABLE ${s}.log_head (
            one      boolean PRIMARY KEY DEFAULT true CHECK (one),
            last_seq bigint  NOT NULL
          );
          INSERT INTO ${s}.log_head (one, last_seq) VALUES (true, 0);
          CREATE TABLE ${s}.log_meta (
            one            boolean PRIMARY KEY DEFAULT true CHECK (one),
            epoch          text    NOT NULL,
            pruned_through bigint  NOT NULL
          );
          CREATE TABLE ${s}.idempotency_keys (
            key        text   PRIMARY KEY,
            seq        bigint NOT NULL,
            at         bigint NOT NULL,
            keep_until bigint NOT NULL
          );
          CREATE INDEX idempotency_keys_by_at ON ${s}.idempotency_keys (at);
          CREATE INDEX idempotency_keys_by_seq ON ${s}.idempotency_keys (seq);
          CREATE TABLE ${s}.inbound_receipts (
            id            bigserial PRIMARY KEY,
            source        text   NOT NULL,
            status        text   NOT NULL,
            received_at   bigint NOT NULL,
            keep_until    bigint NOT NULL,
            provider_id   text,
            type          text,
            headers       text   NOT NULL,
            body          bytea,
            error_code    text,
            error_message text,
            seq           bigint,
            replay_of     bigint
          );
          CREATE INDEX inbound_receipts_by_source ON ${s}.inbound_receipts (source, id);
          CREATE INDEX inbound_receipts_by_keep ON ${s}.inbound_receipts (keep_until);
          CREATE TABLE ${s}.inbound_digests (
            source     text   NOT NULL,
            digest     bytea  NOT NULL,
            seq        bigint NOT NULL,
            at         bigint NOT NULL,
            keep_until bigint NOT NULL,
            PRIMARY KEY (source, digest)
          );
          CREATE INDEX inbound_digests_by_keep ON ${s}.inbound_digests (keep_until);
          CREATE TABLE ${s}.stream_positions (
            stream      text   PRIMARY KEY,
            last_offset bigint NOT NULL,
            seq         bigint NOT NULL
          );
        `);
        // The log's identity, made with it and never changed (see LogBounds.epoch).
        await client.query(`INSERT INTO ${s}.log_meta (one, epoch, pruned_through) VALUES (true, $1, 0)`, [newEpoch()]);
      },
    },
  ],
};

/**
 * The node directory (src/stores/node-directories.ts): each node's heartbeat record, so any node
 * can list them all (`GET /v1/nodes`).
 */
export const POSTGRES_NODE_MIGRATIONS: PostgresMigrationSet = {
  name: 'nodes',
  steps: [
    {
      version: 1,
      async up(client, s) {
        await client.query(`CREATE TABLE ${s}.nodes (id text PRIMARY KEY, seen_at bigint NOT NULL, record text NOT NULL)`);
      },
    },
  ],
};

/**
 * Every set `migratePostgres` applies by default, in order: the log first (the delivery store's
 * rows refer to its seqs), then the delivery store's (src/stores/postgres-delivery-migrations.ts),
 * then the node directory's.
 */
export const POSTGRES_MIGRATION_SETS: readonly PostgresMigrationSet[] = [
  POSTGRES_LOG_MIGRATIONS,
  POSTGRES_DELIVERY_MIGRATIONS,
  POSTGRES_NODE_MIGRATIONS,
];

/** The schema Herald uses when none is configured. */
export const POSTGRES_DEFAULT_SCHEMA = 'herald';

/** A schema name Herald accepts: a plain lower-case identifier, so it can be quoted without surprises. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** `schema` quoted for SQL; throws a TypeError naming it when it is not a plain identifier. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new TypeError(`the Postgres schema name "${schema}" must be a lower-case identifier (letters, digits, _)`);
  }
  return `"${schema}"`;
}

/**
 * Applies every step of `sets` not yet recorded in `<schema>.schema_migrations`, one
 * transaction per step, each under a transaction-level advisory lock on the schema's name: two
 * nodes starting together wait for each other instead of both migrating. Creates the schema
 * when missing. Resolves to the steps it applied (`set:version`), empty when none was due.
 */
export async function migratePostgres(
  pool: pg.Pool,
  schema: string = POSTGRES_DEFAULT_SCHEMA,
  sets: readonly PostgresMigrationSet[] = POSTGRES_MIGRATION_SETS,
): Promise<string[]> {
  const s = quoteSchema(schema);
  const applied: string[] = [];
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection that fails while checked out emits 'error' besides failing its query: without
  // a listener that would be an uncaught exception. The client is then destroyed, not reused.
  const onError = (err: Error) => (broken ??= err);
  client.on('error', onError);
  try {
    for (const set of sets) {
      for (const step of set.steps) {
        await client.query('BEGIN');
        try {
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`herald-migrate:${schema}`]);
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
          await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
            set_name   text        NOT NULL,
            version    integer     NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (set_name, version)
          )`);
          const done = await client.query(`SELECT 1 FROM ${s}.schema_migrations WHERE set_name = $1 AND version = $2`, [
            set.name,
            step.version,
          ]);
          if (done.rowCount === 0) {
            await step.up(client, s);
            await client.query(`INSERT INTO ${s}.schema_migrations (set_name, version) VALUES ($1, $2)`, [set.name, step.version]);
            applied.push(`${set.name}:${step.version}`);
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch((e: Error) => (broken = e));
          throw err;
        }
      }
    }
    return applied;
  } finally {
    // A destroyed client may still report its end: the listener stays with it.
    if (!broken) client.off('error', onError);
    client.release(broken);
  }
}

/**
 * Rejects, naming the command to run, unless every step of `set` is recorded in `schema`: a
 * store checks this before its first query instead of failing later on a missing table.
 */
export async function checkMigrated(pool: pg.Pool, schema: string, set: PostgresMigrationSet): Promise<void> {
  const s = quoteSchema(schema);
  const want = Math.max(0, ...set.steps.map((m) => m.version));
  const exists = await pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${s}.schema_migrations`]);
  let have = 0;
  if (exists.rows[0]?.t) {
    const r = await pool.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations WHERE set_name = $1`, [set.name]);
    have = r.rows[0]?.v ?? 0;
  }
  if (have < want) {
    throw new Error(
      `the Postgres schema "${schema}" lacks Herald's ${set.name} tables (version ${have} of ${want}): run \`herald migrate\` first`,
    );
  }
}
