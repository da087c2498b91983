import pg from 'pg';

/** milliseconds to open a connection: an unreachable server fails a call this soon, not after the OS's TCP timeout. */
export const POSTGRES_CONNECT_TIMEOUT_MS = 5_000;

/**
 * milliseconds one statement may run, enforced twice: by the server (statement_timeout, which
 * also bounds a wait for the log's head lock) and by the client (query_timeout, for a server
 * that stopped answering). Prunes delete in chunks, so no statement of Herald's needs longer.
 */
export const POSTGRES_STATEMENT_TIMEOUT_MS = 10_000;

/**
 * milliseconds a session may sit idle inside a transaction before the server ends it: a node
 * that died (or lost the network) holding the log's head lock releases it this soon.
 */
export const POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS = 15_000;

/** milliseconds an idle pooled connection is kept before it is closed. */
export const POSTGRES_IDLE_CONNECTION_MS = 30_000;

/** Connections one node's pool opens at most: appends are serialised per log, so few are needed. */
export const POSTGRES_POOL_MAX_CONNECTIONS = 10;

export interface PostgresPoolOptions {
  /** `postgres://user:password@host:port/database` (libpq URL; `?sslmode=` and friends as pg reads them). */
  readonly url: string;
  readonly maxConnections?: number | undefined;
  /** Names the connections in pg_stat_activity. */
  readonly applicationName?: string | undefined;
}

/**
 * A pool configured the way Herald's Postgres stores expect: calls fail promptly while the
 * server is unreachable (connect, statement and client-side timeouts above) and connections
 * are replaced by themselves once it is back. An idle client's error (the server restarted) is
 * absorbed: the pool drops that client, and the next call opens a new one.
 */
export function createPostgresPool(opts: PostgresPoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.maxConnections ?? POSTGRES_POOL_MAX_CONNECTIONS,
    connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: POSTGRES_IDLE_CONNECTION_MS,
    statement_timeout: POSTGRES_STATEMENT_TIMEOUT_MS,
    query_timeout: POSTGRES_STATEMENT_TIMEOUT_MS + POSTGRES_CONNECT_TIMEOUT_MS,
    idle_in_transaction_session_timeout: POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAlive: true,
    // Herald's statements are short and planned on one-row tables: JIT compilation only adds time.
    options: '-c jit=off',
    application_name: opts.applicationName ?? 'herald',
  });
  pool.on('error', () => undefined);
  const pids = new Set<number>();
  pool.on('connect', (client) => {
    const pid = (client as pg.Client & { processID?: number }).processID;
    if (typeof pid !== 'number') return;
    pids.add(pid);
    client.once('end', () => pids.delete(pid));
  });
  backendPids.set(pool, pids);
  return pool;
}

const backendPids = new WeakMap<pg.Pool, ReadonlySet<number>>();

/**
 * The server process ids of a pool's open connections (a pool made by `createPostgresPool`;
 * empty for any other): a NOTIFY sent by one of them was sent by this node. Behind a pooler the
 * ids a client is told are the pooler's, and nothing matches.
 */
export function poolBackendPids(pool: pg.Pool): ReadonlySet<number> {
  return backendPids.get(pool) ?? new Set();
}
