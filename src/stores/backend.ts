import type { Redis } from 'ioredis';
import type pg from 'pg';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { DeliveryStore } from '../core/delivery-store.js';
import { HeraldError, StartupError } from '../core/errors.js';
import type { EventStore } from '../core/event-store.js';
import type { ReadinessCheck } from '../core/readiness.js';
import type { Receipt, ReceiptInput, ReceiptQuery } from '../core/inbound-receipt.js';
import { newEpoch } from '../core/position.js';
import type { NodeDirectory } from '../core/nodes.js';
import type { PresenceStore } from '../core/presence.js';
import { PresenceRegistry } from '../presence/presence-registry.js';
import { RedisPresenceStore } from '../presence/redis-presence.js';
import { MemoryDeliveryStore } from './memory-delivery-store.js';
import { MemoryEventStore } from './memory-event-store.js';
import { memoryNodeDirectory, postgresNodeDirectory, redisNodeDirectory, sqliteNodeDirectory } from './node-directories.js';
import { connectRedis, RedisHealth, waitReady, type RedisLogger } from './redis-connection.js';
import { createPostgresPool } from './postgres-connection.js';
import { PostgresDeliveryStore } from './postgres-delivery-store.js';
import { PostgresEventStore } from './postgres-event-store.js';
import { checkMigrated, migratePostgres, POSTGRES_MIGRATION_SETS } from './postgres-migrations.js';
import { RedisDeliveryStore } from './redis-delivery-store.js';
import { RedisEventStore, ReplicationTimeoutError } from './redis-event-store.js';
import { SqliteDeliveryStore } from './sqlite-delivery-store.js';
import { SqliteEventStore } from './sqlite-event-store.js';
import { sqliteWriteProbe } from './sqlite-write-probe.js';

/** The `backend` config union (src/config/schema.ts): one case per kind of backend. */
export type BackendOptions =
  | { readonly type: 'sqlite'; readonly file: string; readonly synchronous: 'full' | 'normal' }
  | { readonly type: 'memory' }
  | {
      readonly type: 'redis';
      /** redis://, rediss:// or redis+sentinel:// (src/stores/redis-url.ts). */
      readonly url: string;
      /** Every key is `{<keyPrefix>}:...`: one hash tag, one Redis Cluster slot. */
      readonly keyPrefix: string;
      readonly waitReplicas: number;
      readonly waitTimeoutSeconds: number;
    }
  | {
      readonly type: 'postgres';
      /** postgres://user:password@host:port/database */
      readonly url: string;
      /** The schema holding Herald's tables. */
      readonly schema: string;
      /** Apply pending migrations at start; false: only check that `herald migrate` did. */
      readonly migrate: boolean;
    };

/** milliseconds a node waits for Redis at start before it gives up with a reason. */
export const REDIS_STARTUP_TIMEOUT_MS = 15_000;
/** milliseconds a closing node waits for Redis to take its last writes (its presence leave). */
const REDIS_QUIT_TIMEOUT_MS = 1_000;

/** What every backend's presence store needs (the `presence` config section). */
export interface PresenceOptions {
  /** Channel names and patterns that track presence (`presence.channels`). */
  readonly patterns: readonly string[];
  /** milliseconds a member stays after its last connection (`presence.leaveDelaySeconds`). */
  readonly leaveDelayMs: number;
}

/**
 * Everything that must live together, from one backend: what is written in one transaction
 * (an event, its idempotency key, its inbound receipt, its Kafka offset) and what is owed from
 * it (outbound deliveries, their leases, the planner's cursor and lease) survive or vanish
 * together; presence and coordination are shared by exactly the nodes that share the log.
 */
export interface BackendSet {
  readonly type: BackendOptions['type'];
  /** The log, with idempotency keys and stream positions (EventStore); lent to the hub only. */
  readonly log: EventStore;
  /** Inbound receipts, for the webhook receiver (its InboundLog interface). */
  readonly inbound: {
    recordReceipts(receipts: readonly ReceiptInput[]): Promise<Receipt[]>;
    listReceipts(source: string, query: ReceiptQuery): Promise<Receipt[]>;
    getReceipt(source: string, id: number): Promise<Receipt | undefined>;
  };
  /**
   * Outbound endpoints, deliveries and their leases, the planner's cursor, and the named leases
   * that coordinate the nodes (`planner`: the one node that plans deliveries).
   */
  readonly deliveries: DeliveryStore;
  /**
   * Who is connected to each presence-enabled channel. Memory and SQLite keep it in process:
   * presence is about this node's live connections, and no other node shares it; a shared
   * backend (Redis) brings its own, with a TTL on each node's entries.
   */
  readonly presence: PresenceStore;
  /**
   * The nodes sharing this backend, each with its heartbeat record (`GET /v1/nodes`): a table of
   * the SQLite file or the Postgres schema, keys with a TTL in Redis; in process for memory.
   */
  readonly nodes: NodeDirectory;
  /**
   * A small write that proves the backend takes writes again after a failed append (a full disk,
   * a Redis outage or failover), without touching the log; none where a failed append cannot
   * come back by itself. A node that answers 503 gets no publishes from its load balancer, so
   * without it the node would stay out of rotation after the backend healed.
   */
  readonly writeProbe?: () => void | Promise<void>;
  /**
   * For a shared backend: its connection and key prefix, from which the wiring builds the broker
   * that follows the shared log (src/brokers/redis-broker.ts), and what the broker tells the log
   * of each batch it hands to this node's subscribers (`onHandOver`: the log must never hand
   * those ids out again for other events, see RedisEventStore.handedOver). Undefined for a
   * backend of one node.
   */
  readonly shared?: {
    readonly redis: Redis;
    readonly prefix: string;
    readonly onHandOver: (epoch: string, seq: number) => void;
  };
  /**
   * For a Postgres backend: its pool and schema, from which the wiring builds the broker that
   * follows the log (src/brokers/postgres-broker.ts: LISTEN/NOTIFY as a wake-up, and polling).
   */
  readonly postgres?: { readonly pool: pg.Pool; readonly schema: string };
  /** For `/readyz`: not ready while a shared backend is unreachable. */
  readonly check?: ReadinessCheck;
  /** Resolves once the backend can take requests; rejects with a StartupError when it cannot. */
  ready(): Promise<void>;
  /** Closes presence and the log (the delivery store is closed by the outbound wing, before this). */
  close(): Promise<void>;
}

/** Options beyond the `backend` config that some backends need. */
export interface BackendContext {
  /** Where a shared backend logs its outages (one line when one starts, one when it ends). */
  readonly logger?: RedisLogger & { error(obj: object, msg: string): void };
  /** milliseconds an idempotency key is kept (`retention.idempotencyTtlSeconds`). */
  readonly idempotencyTtlMs?: number;
}

/**
 * The one place that knows every backend. A new backend (Redis, Postgres) is one new case here,
 * returning its own implementation of each interface, each passing the same contract suites.
 */
export function createBackend(
  opts: BackendOptions,
  presenceOptions: PresenceOptions = NO_PRESENCE,
  context: BackendContext = {},
): BackendSet {
  const ready = () => Promise.resolve();
  switch (opts.type) {
    case 'memory': {
      // Message ids of the delivery queue carry the log's epoch, as in SQLite.
      const epoch = newEpoch();
      const log = new MemoryEventStore({ epoch });
      const deliveries = new MemoryDeliveryStore({ logId: epoch });
      const presence = new PresenceRegistry(presenceOptions);
      const nodes = memoryNodeDirectory();
      return { type: opts.type, log, inbound: log, deliveries, presence, nodes, ready, close: closeAll(presence, log) };
    }
    case 'redis':
      return createRedisBackend(opts, presenceOptions, context);
    case 'postgres':
      return createPostgresBackend(opts, presenceOptions);
    case 'sqlite': {
      // One file: its migrations (sqlite-migrations.ts) make every table; the delivery queue
      // shares the log's connection, and its acknowledged writes wait for the log's fsync.
      const log = openSqlite(opts);
      const deliveries = new SqliteDeliveryStore(log.database, { sync: () => log.sync() });
      const writeProbe = sqliteWriteProbe(log.database);
      const presence = new PresenceRegistry(presenceOptions);
      const nodes = sqliteNodeDirectory(log.database);
      return { type: opts.type, log, inbound: log, deliveries, presence, nodes, writeProbe, ready, close: closeAll(presence, log) };
    }
  }
}

/**
 * Redis, shared by every node of a deployment: the log (src/stores/redis-event-store.ts), the
 * delivery queue (src/stores/redis-delivery-store.ts) and presence
 * (src/presence/redis-presence.ts) on one connection, every key
 * under one hash tag. An unreachable Redis makes every call fail at once with
 * BACKEND_UNAVAILABLE (503), never hang: the connection does not queue commands while it is down
 * (src/stores/redis-connection.ts), and `check` keeps `/readyz` at 503 until it is back.
 */
function createRedisBackend(
  opts: Extract<BackendOptions, { type: 'redis' }>,
  presenceOptions: PresenceOptions,
  context: BackendContext,
): BackendSet {
  const prefix = `{${opts.keyPrefix}}:`;
  const redis = connectRedis(opts.url, { name: `herald:${hostname()}:${process.pid}`, logger: context.logger });
  const health = new RedisHealth(redis, { name: 'backend', logger: context.logger });
  const store = new RedisEventStore({
    redis,
    prefix,
    waitReplicas: opts.waitReplicas,
    waitTimeoutMs: opts.waitTimeoutSeconds * 1000,
    idempotencyTtlMs: context.idempotencyTtlMs,
  });
  const log = failFast(store);
  const deliveries = new RedisDeliveryStore({ redis, prefix, logId: async () => (await log.head()).epoch });
  // Each node's presence entries carry its name; a node that dies stops renewing them.
  const node = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const presence = new RedisPresenceStore({ redis, prefix, node, ...presenceOptions });
  const check: ReadinessCheck = {
    name: 'backend',
    listedOnlyWhenFailing: true,
    get ready() {
      return health.ready;
    },
    get state() {
      return health.ready ? 'connected' : 'unreachable';
    },
  };
  return {
    type: opts.type,
    log,
    inbound: log,
    deliveries,
    presence,
    nodes: redisNodeDirectory(redis, prefix),
    shared: { redis, prefix, onHandOver: (epoch, seq) => store.handedOver(epoch, seq) },
    check,
    writeProbe: () => store.writeProbe(),
    async ready() {
      try {
        await waitReady(redis, REDIS_STARTUP_TIMEOUT_MS);
      } catch (err) {
        throw new StartupError(`cannot reach Redis (backend.url): ${(err as Error).message}`, { cause: err });
      }
    },
    async close() {
      presence.close(); // queues this node's graceful leave on the connection
      health.close();
      await log.close();
      // QUIT answers after every command before it (the leave above); a Redis that is gone
      // answers nothing, so it is bounded.
      await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, REDIS_QUIT_TIMEOUT_MS).unref())]);
      redis.disconnect();
    },
  };
}

/**
 * Postgres, shared by every node of a deployment: the log (src/stores/postgres-event-store.ts,
 * seqs handed out in commit order) and the delivery queue (src/stores/postgres-delivery-store.ts,
 * claims with FOR UPDATE SKIP LOCKED) in one schema, migrated at start unless `migrate` is false
 * (then `herald migrate` does it, and start only checks). Presence stays per node. An
 * unreachable Postgres makes calls fail with BACKEND_UNAVAILABLE (503) within the pool's timeouts
 * (src/stores/postgres-connection.ts), and `/readyz` answers 503 while the log cannot answer.
 */
function createPostgresBackend(opts: Extract<BackendOptions, { type: 'postgres' }>, presenceOptions: PresenceOptions): BackendSet {
  const pool = createPostgresPool({ url: opts.url, applicationName: `herald:${hostname()}:${process.pid}` });
  // Started at once, so the hub's first read of the log (at construction) waits for the tables
  // instead of failing on a fresh database; `ready()` reports how it went.
  const migrated = (async () => {
    if (opts.migrate) await migratePostgres(pool, opts.schema);
    else for (const set of POSTGRES_MIGRATION_SETS) await checkMigrated(pool, opts.schema, set);
  })();
  migrated.catch(() => undefined); // reported by ready(); calls meanwhile fail with BACKEND_UNAVAILABLE
  const log = failFast(new PostgresEventStore({ pool, schema: opts.schema }), migrated);
  const deliveries = new PostgresDeliveryStore({ pool, schema: opts.schema, logId: async () => (await log.head()).epoch });
  const presence = new PresenceRegistry(presenceOptions);
  return {
    type: opts.type,
    log,
    inbound: log,
    deliveries,
    presence,
    nodes: postgresNodeDirectory(pool, opts.schema),
    postgres: { pool, schema: opts.schema },
    // Taking a transaction id needs a server that accepts writes (not a standby, not a full disk
    // refusing new WAL): the smallest proof that appends can commit again.
    writeProbe: async () => void (await pool.query('SELECT pg_current_xact_id()')),
    async ready() {
      try {
        await migrated;
      } catch (err) {
        throw new StartupError(`cannot use the Postgres database (backend.url, schema "${opts.schema}"): ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
    async close() {
      presence.close();
      await log.close();
      await pool.end();
    },
  };
}

/**
 * The log with every failure to reach the backend as BACKEND_UNAVAILABLE (503, "retry later,
 * with the same idempotency key"), so a publisher can tell an outage from a bad request; each
 * call waits for `before` (a schema being migrated at start). An
 * append whose replicas did not answer in time is stored: the same code, and a message that says
 * so (a retry with the same key gets the first event back).
 */
function failFast<T extends EventStore>(store: T, before: Promise<void> = Promise.resolve()): T {
  const translate = (err: unknown): never => {
    if (err instanceof HeraldError) throw err;
    if (err instanceof ReplicationTimeoutError) {
      throw new HeraldError('BACKEND_UNAVAILABLE', `${err.message}; the events are stored: retry with the same idempotency key`);
    }
    throw new HeraldError('BACKEND_UNAVAILABLE', `the shared backend did not take the request: ${(err as Error)?.message ?? String(err)}`);
  };
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (prop === 'close') return fn;
      return (...args: unknown[]) => before.then(() => fn(...args)).catch(translate);
    },
  });
}

/** No channel tracks presence (a backend made without the presence config, as in some tests). */
const NO_PRESENCE: PresenceOptions = { patterns: [], leaveDelayMs: 0 };

function closeAll(presence: PresenceStore, log: EventStore): () => Promise<void> {
  return () => {
    presence.close();
    return log.close();
  };
}

function openSqlite(opts: Extract<BackendOptions, { type: 'sqlite' }>): SqliteEventStore {
  try {
    return new SqliteEventStore({ file: opts.file, synchronous: opts.synchronous });
  } catch (err) {
    // A corrupt file (SQLITE_NOTADB), a read-only one (SQLITE_READONLY), a folder we may not
    // write (EACCES): the operator needs the path and the cause, not a stack trace.
    const e = err as { message?: string; code?: string };
    const code = e.code !== undefined && !String(e.message).includes(e.code) ? ` (${e.code})` : '';
    throw new StartupError(
      `cannot open the database file ${opts.file} (backend.file): ${e.message ?? String(err)}${code}${writeProblem(opts.file)}`,
      { cause: err },
    );
  }
}

/**
 * Why SQLite may not write `file` or its folder (it needs both: the WAL and the shared-memory
 * file sit beside the database), as a clause to append to an error; '' when both are writable.
 */
function writeProblem(file: string): string {
  for (const path of [file, dirname(file)]) {
    try {
      accessSync(path, fsConstants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') return `; ${path} is not writable (${e.code ?? e.message})`;
    }
  }
  return '';
}
