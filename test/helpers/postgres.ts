import pg from 'pg';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createPostgresPool } from '../../src/stores/postgres-connection.js';
import { migratePostgres } from '../../src/stores/postgres-migrations.js';
import { needService } from './service.js';

/**
 * The real Postgres for Postgres tests: `bash scripts/services/postgres.sh start` prints the URL
 * to export as HERALD_TEST_POSTGRES_URL. Without it a test skips on a laptop and fails in CI
 * (needService). The server is shared: each test works in a database of its own, made here and
 * dropped afterwards.
 */
export const POSTGRES_URL = process.env.HERALD_TEST_POSTGRES_URL ?? '';
const HOW =
  'run `bash scripts/services/postgres.sh start` and export HERALD_TEST_POSTGRES_URL=postgres://herald@127.0.0.1:55432/postgres';
/** milliseconds the availability probe may take. */
const PROBE_TIMEOUT_MS = 3_000;

let probe: Promise<boolean> | undefined;

async function reachable(): Promise<boolean> {
  if (!POSTGRES_URL) return false;
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The Postgres URL, or undefined after skipping the test (failing it in CI) when there is none. */
export async function needPostgres(t: TestContext): Promise<string | undefined> {
  probe ??= reachable();
  return needService(t, await probe, 'Postgres', HOW) ? POSTGRES_URL : undefined;
}

/**
 * For suites registered without a TestContext (contract factories): the Postgres URL, or
 * undefined after registering `name` as one skipped test (throws under CI=true). Call it with a
 * top-level `await`.
 */
export async function postgresForSuite(name: string): Promise<string | undefined> {
  probe ??= reachable();
  if (await probe) return POSTGRES_URL;
  if (process.env.CI === 'true') throw new Error(`Postgres is required in CI but is not available (${HOW})`);
  test(name, { skip: `Postgres is not available: ${HOW}` }, () => undefined);
  return undefined;
}

/** `url` with its database replaced by `database`. */
export function databaseUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A database of one test's (or suite's) own on the shared server. */
export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A new pool on it (as Herald configures its own), ended by `drop()`. */
  pool(): pg.Pool;
  /** A pool on it with the schema migrated. */
  migratedPool(schema?: string): Promise<pg.Pool>;
  /** Ends every pool handed out, then drops the database (connections still open are cut). */
  drop(): Promise<void>;
}

/** Creates `herald_test_<random>` on the server at `url`. */
export async function createTestDatabase(url: string): Promise<TestDatabase> {
  const name = `herald_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const dbUrl = databaseUrl(url, name);
  const pools: pg.Pool[] = [];
  const db: TestDatabase = {
    name,
    url: dbUrl,
    pool() {
      const p = createPostgresPool({ url: dbUrl, applicationName: 'herald-test' });
      pools.push(p);
      return p;
    },
    async migratedPool(schema) {
      const p = db.pool();
      await migratePostgres(p, schema);
      return p;
    },
    async drop() {
      for (const p of pools.splice(0)) await p.end().catch(() => undefined);
      const a = new pg.Client({ connectionString: url });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
  return db;
}

/** A fresh database for one test, dropped by `t.after`; undefined after skipping when Postgres is missing. */
export async function testDatabase(t: TestContext): Promise<TestDatabase | undefined> {
  const url = await needPostgres(t);
  if (!url) return undefined;
  const db = await createTestDatabase(url);
  t.after(() => db.drop());
  return db;
}

/** A schema name no other store of the run uses: `herald_<random>` (a new log in a shared database). */
export function uniqueSchema(): string {
  return `herald_${randomBytes(5).toString('hex')}`;
}

/**
 * For a contract suite: one database for the whole file (dropped `after` it), in which each
 * store gets a schema of its own. `pool()` is a new pool on that database (a reopen, or another
 * node); `migrated()` makes a fresh schema with every migration applied and returns its name.
 */
export async function suiteDatabase(url: string): Promise<{ pool(): pg.Pool; migrated(): Promise<string>; drop(): Promise<void> }> {
  const db = await createTestDatabase(url);
  let admin: pg.Pool | undefined;
  return {
    pool: () => db.pool(),
    async migrated() {
      admin ??= db.pool();
      const schema = uniqueSchema();
      await migratePostgres(admin, schema);
      return schema;
    },
    drop: () => db.drop(),
  };
}

/**
 * For contract suites whose factories are synchronous: `count` schemas migrated up front (a
 * store's constructor does no I/O, but its schema must exist before its first call), handed
 * out one per new store by `next()`, which throws once they run out.
 */
export async function premigratedSchemas(db: { migrated(): Promise<string> }, count: number): Promise<{ next(): string }> {
  const ready: string[] = [];
  for (let i = 0; i < count; i++) ready.push(await db.migrated());
  return {
    next() {
      const s = ready.shift();
      if (s === undefined) throw new Error(`more than ${count} Postgres stores asked for: raise the count`);
      return s;
    },
  };
}

/** milliseconds a Postgres of a test's own may take to start or stop. */
const OWN_POSTGRES_TIMEOUT_MS = 30_000;

/** A Postgres cluster of one test's own, for tests that stop or restart it (never the shared one). */
export interface OwnPostgres {
  /** `postgres://herald@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** Starts it again (same data) and waits until it accepts connections. */
  start(): void;
  /** Stops it at once (`-m immediate`: as a crash; the data survives). */
  stop(): void;
}

function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const v of readdirSync(root).sort().reverse()) {
      if (existsSync(join(root, v, 'bin', 'pg_ctl'))) return join(root, v, 'bin');
    }
  }
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  return which.status === 0 ? dirname(which.stdout.trim()) : undefined;
}

/**
 * initdb and pg_ctl a cluster on a free loopback port in a temporary folder, stopped and removed
 * by `t.after`. As root, the cluster belongs to the `postgres` user (the server refuses root).
 * Skips without the binaries (fails in CI, see needService).
 */
export async function ownPostgres(t: TestContext): Promise<OwnPostgres | undefined> {
  const bin = postgresBinDir();
  if (!needService(t, bin !== undefined, 'Postgres binaries (initdb, pg_ctl)', 'apt-get install -y postgresql')) return undefined;
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'herald-pg-'));
  if (root) spawnSync('chown', ['postgres', dir]);
  const data = join(dir, 'data');
  const run = (cmd: string, args: string[]) => {
    const full = root ? ['runuser', ['-u', 'postgres', '--', join(bin!, cmd), ...args]] as const : [join(bin!, cmd), args] as const;
    const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8', timeout: OWN_POSTGRES_TIMEOUT_MS });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout || r.error?.message}`);
  };
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  run('initdb', ['-D', data, '-U', 'herald', '--auth=trust', '--encoding=UTF8', '--no-sync']);
  const opts = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir}`;
  const own: OwnPostgres = {
    url: `postgres://herald@127.0.0.1:${port}/postgres`,
    start: () => run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', opts, '-w', '-t', String(OWN_POSTGRES_TIMEOUT_MS / 1_000), 'start']),
    stop: () => run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']),
  };
  t.after(() => {
    try {
      own.stop();
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  });
  own.start();
  return own;
}
