import { Redis } from 'ioredis';
import type { TestContext } from 'node:test';
import { needService, suiteSkip } from './service.js';

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

/** The Redis URL when Redis answers, else undefined (no skip: for `before` hooks). */
export async function redisAvailable(): Promise<string | undefined> {
  probe ??= reachable();
  return (await probe) ? REDIS_URL : undefined;
}

/** The Redis URL, or undefined after skipping the test (failing it in CI) when there is none. */
export async function needRedis(t: TestContext): Promise<string | undefined> {
  probe ??= reachable();
  return needService(t, await probe, 'Redis', HOW) ? REDIS_URL : undefined;
}

/**
 * For a suite registered at the top level (a contract run): undefined when Redis answers, else
 * the message to skip the suite with on a laptop; throws in CI (suiteSkip).
 */
export async function redisSuiteSkip(): Promise<string | undefined> {
  probe ??= reachable();
  return suiteSkip(await probe, 'Redis', HOW);
}

/** Deletes every key under `prefix` (a test's own, from uniquePrefix). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', prefix.replace(/[*?[\]\\]/g, '\\$&') + '*', 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
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
