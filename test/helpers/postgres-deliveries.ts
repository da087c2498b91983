import pg from 'pg';
import type { TestContext } from 'node:test';
import { needService, suiteSkip } from './service.js';

/**
 * The real Postgres for the delivery store's tests: `bash scripts/services/postgres.sh start`
 * prints the URL to export as HERALD_TEST_POSTGRES_URL. Without it a suite skips on a laptop and
 * fails in CI (suiteSkip). The server is shared: each test makes databases of its own and drops them.
 */
export const POSTGRES_URL = process.env.HERALD_TEST_POSTGRES_URL ?? '';
const HOW = 'run `bash scripts/services/postgres.sh start` and export HERALD_TEST_POSTGRES_URL to the URL it prints';
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

/**
 * For a suite registered at the top level (a contract run): undefined when Postgres answers, else
 * the message to skip the suite with on a laptop; throws in CI.
 */
export async function postgresSuiteSkip(): Promise<string | undefined> {
  probe ??= reachable();
  return suiteSkip(await probe, 'Postgres', HOW);
}

/** True when Postgres answers; else skips the test on a laptop (fails it in CI) and resolves to false. */
export async function needPostgres(t: TestContext): Promise<boolean> {
  probe ??= reachable();
  return needService(t, await probe, 'Postgres', HOW);
}

/** Databases of one test file: `create()` makes a fresh one and returns its URL; `dropAll()` drops them. */
export function testDatabases(name = 'herald_test'): { create(): Promise<string>; dropAll(): Promise<void> } {
  const made: string[] = [];
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  return {
    async create() {
      const db = `${name}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
      await admin((c) => c.query(`CREATE DATABASE "${db}"`));
      made.push(db);
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${db}`;
      return url.href;
    },
    async dropAll() {
      if (made.length === 0) return;
      await admin(async (c) => {
        // FORCE: a pool a failed test left open does not keep its database alive.
        for (const db of made.splice(0)) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      });
    },
  };
}
