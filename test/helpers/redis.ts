import { Redis } from 'ioredis';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
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

/** milliseconds a Redis of a test's own may take to answer PING after it starts. */
const OWN_REDIS_START_TIMEOUT_MS = 10_000;

/** A redis-server of one test's own, for tests that stop, kill or reconfigure it (never the shared one). */
export interface OwnRedis {
  readonly port: number;
  readonly url: string;
  /** the running process, undefined while stopped */
  readonly process: ChildProcess | undefined;
  /** starts it again on the same port (empty: no persistence) and waits until it answers PING */
  start(): Promise<void>;
  /** SIGKILL, then waits until the process is gone */
  kill(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts a redis-server of the test's own on a free loopback port (no persistence), killed by
 * `t.after`. Skips the test without the redis-server binary (fails in CI, see needService).
 */
export async function ownRedis(t: TestContext): Promise<OwnRedis | undefined> {
  const hasBinary = spawnSync('redis-server', ['--version']).status === 0;
  if (!needService(t, hasBinary, 'redis-server', 'install it (Debian: apt-get install -y redis-server)')) return undefined;
  const port = await freePort();
  let child: ChildProcess | undefined;
  const own: OwnRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get process() {
      return child;
    },
    async start() {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
      child = spawn('redis-server', args, { stdio: 'ignore' });
      const probe = new Redis(own.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      const deadline = Date.now() + OWN_REDIS_START_TIMEOUT_MS;
      try {
        for (;;) {
          try {
            await probe.connect();
            if ((await probe.ping()) === 'PONG') return;
          } catch {
            if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      } finally {
        probe.disconnect();
      }
    },
    async kill() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGCONT'); // a stopped process takes SIGKILL too, but say so
      c.kill('SIGKILL');
      await exited;
    },
  };
  t.after(() => own.kill());
  await own.start();
  return own;
}

/**
 * The Sentinel set for failover tests: `bash scripts/services/redis-sentinel.sh start` (`.ci/run`
 * does it) prints the URL to export as HERALD_TEST_REDIS_SENTINEL_URL. Skips without it on a
 * laptop, fails in CI.
 */
export const REDIS_SENTINEL_URL = process.env.HERALD_TEST_REDIS_SENTINEL_URL ?? '';
const SENTINEL_HOW =
  'run `bash scripts/services/redis-sentinel.sh start` and export HERALD_TEST_REDIS_SENTINEL_URL=redis+sentinel://127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392/herald';

/** The Sentinel script, found from this file upwards (it runs compiled, from dist/). */
export function sentinelScript(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const script = join(dir, 'scripts/services/redis-sentinel.sh');
    if (existsSync(script)) return script;
  }
  throw new Error('scripts/services/redis-sentinel.sh not found above the test helpers');
}

/** milliseconds `redis-sentinel.sh restore` may take: restarting a node and the sentinels clearing its down flag. */
const SENTINEL_RESTORE_TIMEOUT_MS = 60_000;

/**
 * Brings the Sentinel set back to a primary, its replicas and three agreeing sentinels: a data
 * node a test killed is restarted as a replica of the current primary. Throws when it cannot.
 */
export function restoreRedisSentinel(): void {
  const r = spawnSync('bash', [sentinelScript(), 'restore'], { encoding: 'utf8', timeout: SENTINEL_RESTORE_TIMEOUT_MS });
  if (r.status !== 0) throw new Error(`redis-sentinel.sh restore failed: ${r.stderr || r.error?.message}`);
}

/** host, port and pid of the Sentinel set's current primary (`redis-sentinel.sh primary`). */
export function sentinelPrimary(): { host: string; port: number; pid: number } {
  const r = spawnSync('bash', [sentinelScript(), 'primary'], { encoding: 'utf8' });
  const [host, port, pid] = r.stdout.trim().split(' ');
  if (r.status !== 0 || !host || !port || !pid) throw new Error(`redis-sentinel.sh primary failed: ${r.stderr}`);
  return { host, port: Number(port), pid: Number(pid) };
}

/** host, port and pid of each running replica of the Sentinel set (`redis-sentinel.sh replicas`). */
export function sentinelReplicas(): { host: string; port: number; pid: number }[] {
  const r = spawnSync('bash', [sentinelScript(), 'replicas'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-sentinel.sh replicas failed: ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [host, port, pid] = line.split(' ');
      return { host: host!, port: Number(port), pid: Number(pid) };
    });
}

/** As restoreRedisSentinel, without blocking the test's event loop (its clients keep reading meanwhile). */
export function restoreRedisSentinelAsync(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [sentinelScript(), 'restore'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), SENTINEL_RESTORE_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`redis-sentinel.sh restore failed: ${stderr}`));
    });
  });
}

/**
 * The Sentinel URL, or undefined after skipping the test (failing it in CI) when the set does
 * not answer. A set an earlier test left with a node down is restored first.
 */
export async function needRedisSentinel(t: TestContext): Promise<string | undefined> {
  let why = '';
  if (REDIS_SENTINEL_URL) {
    try {
      restoreRedisSentinel();
    } catch (err) {
      why = `${(err as Error).message.trim()}; `;
    }
  }
  const up = REDIS_SENTINEL_URL !== '' && why === '';
  return needService(t, up, 'Redis Sentinel', why + SENTINEL_HOW) ? REDIS_SENTINEL_URL : undefined;
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
