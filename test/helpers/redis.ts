import { Redis } from 'ioredis';
import { test, type TestContext } from 'node:test';
import { needService } from './service.js';

/**
 * The real Redis for Redis tests: `bash scripts/services/redis.sh start` (`.ci/run` does it) and
 * `HERALD_TEST_REDIS_URL=redis://127.0.0.1:6390`. Without it a test skips on a laptop and fails
 * in CI (needService).
 */
export const REDIS_URL = process.env.HERALD_TEST_REDIS_URL ?? '';
const HOW = 'run `bash scripts/services/redis.sh start` and export HERALD_TEST_REDIS_URL=redis://127.0.0.1:6390';
/** milliseconds the availability probe may take. */
const PROBE_TIMEOUT_MS = 3_000;

let probe: Promise<boolean> | undefined;

async function reachable(): Promise<boolean> {
  if (!REDIS_URL) return false;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** The Redis URL, or undefined after skipping the test (failing it in CI) when there is none. */
export async function needRedis(t: TestContext): Promise<string | undefined> {
  probe ??= reachable();
  return needService(t, await probe, 'Redis', HOW) ? REDIS_URL : undefined;
}

/**
 * A key prefix no other test uses, with a hash tag (`{...}`) so every key of one log lands in
 * one Redis Cluster slot, as Herald's own prefixes do: `{herald-test-<random>}:`.
 */
export function uniquePrefix(name = 'herald-test'): string {
  return `{${name}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}}:`;
}

/** A client for a test, closed by `t.after`. */
export function testClient(t: TestContext, url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  t.after(() => redis.disconnect());
  return redis;
}

/**
 * For suites registered without a TestContext (contract factories): the Redis URL, or
 * undefined after registering `name` as one skipped test with the message of `needRedis`
 * (throws under CI=true, as needService fails there). Call it with a top-level `await`.
 */
export async function redisForSuite(name: string): Promise<string | undefined> {
  probe ??= reachable();
  if (await probe) return REDIS_URL;
  if (process.env.CI === 'true') throw new Error(`Redis is required in CI but is not available (${HOW})`);
  test(name, { skip: `Redis is not available: ${HOW}` }, () => undefined);
  return undefined;
}

/**
 * Clients for a suite without a TestContext: each `client()` is a new connection that fails
 * fast when Redis is down (as Herald configures its own), and `close()` deletes every key of the
 * prefixes handed out by `prefix()` and disconnects them all.
 */
export function suiteClients(url: string): { client(): Redis; prefix(): string; close(): Promise<void> } {
  const clients: Redis[] = [];
  const prefixes: string[] = [];
  return {
    client() {
      const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true });
      redis.on('error', () => undefined);
      clients.push(redis);
      return redis;
    },
    prefix() {
      const p = uniquePrefix();
      prefixes.push(p);
      return p;
    },
    async close() {
      const admin = new Redis(url, { maxRetriesPerRequest: 1 });
      admin.on('error', () => undefined);
      try {
        for (const p of prefixes) await deletePrefix(admin, p);
      } finally {
        admin.disconnect();
        for (const c of clients) c.disconnect();
      }
    },
  };
}

/** Deletes the keys that start with `prefix` (a test's own keys, never anyone else's). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  const pattern = prefix.replace(/[*?[\]\\]/g, '\\$&') + '*';
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
