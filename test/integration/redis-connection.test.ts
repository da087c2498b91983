import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis, RedisHealth, waitReady, type RedisLogger } from '../../src/stores/redis-connection.js';
import { ownRedis, uniquePrefix } from '../helpers/redis.js';

/** milliseconds a command may take to be refused while Redis is down: "at once", not after a queue drains. */
const REFUSED_WITHIN_MS = 1_000;
/** milliseconds the client and its health may take to notice a change and recover from it. */
const RECOVERY_BOUND_MS = 10_000;
/** milliseconds start-up waits for a Redis that is not there. */
const WAIT_READY_MS = 300;

/** Polls `check` (which may throw) until it returns true, or fails naming `what`. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = RECOVERY_BOUND_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What a logger received, to check that no password reaches it. */
function recordingLogger(): RedisLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push(JSON.stringify({ ...obj, msg })),
    warn: (obj, msg) => lines.push(JSON.stringify({ ...obj, msg })),
  };
}

function client(t: TestContext, url: string, logger?: RedisLogger): { redis: Redis; health: RedisHealth } {
  const redis = connectRedis(url, { name: 'herald:test', logger });
  const health = new RedisHealth(redis, { name: 'herald:test', logger });
  t.after(() => {
    health.close();
    redis.disconnect();
  });
  return { redis, health };
}

/** Resolves with how the promise settled, or 'pending' if it had not within `ms`. */
async function settleWithin<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: Error } | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([p.then((ok) => ({ ok }), (err: Error) => ({ err })), pending]);
  } finally {
    clearTimeout(timer);
  }
}

describe('connectRedis against a Redis that goes away', () => {
  test('a command while Redis is down is refused at once; the client reconnects by itself when Redis is back, and the health follows', async (t) => {
    const server = await ownRedis(t);
    if (!server) return;
    const { redis, health } = client(t, server.url);
    await waitReady(redis, RECOVERY_BOUND_MS);
    const key = `${uniquePrefix()}k`;
    assert.equal(await redis.set(key, 'before'), 'OK');
    assert.equal(await redis.client('GETNAME'), 'herald:test');
    await eventually('the health says ready', () => health.ready);

    await server.kill();
    await eventually('the health says not ready', () => !health.ready);
    const started = Date.now();
    const outcome = await settleWithin(redis.set(key, 'while down'), REFUSED_WITHIN_MS);
    t.diagnostic(`a SET while Redis was down settled after ${Date.now() - started} ms`);
    if (outcome === 'pending') assert.fail(`a SET while Redis is down was still pending after ${REFUSED_WITHIN_MS} ms`);
    assert.ok('err' in outcome, 'a SET while Redis is down succeeded');
    assert.match(outcome.err.message, /enableOfflineQueue/);
    assert.equal(health.ready, false);
    assert.ok(health.reason, 'the health says why it is not ready');

    await server.start();
    await eventually('a SET succeeds again', async () => (await redis.set(key, 'after')) === 'OK');
    await eventually('the health says ready again', () => health.ready);
    assert.equal(health.reason, undefined);
    assert.equal(await redis.get(key), 'after');
  });

  test('a Redis that holds its connection open but answers nothing (SIGSTOP) is found by the PING probe, disconnected and reconnected', async (t) => {
    const server = await ownRedis(t);
    if (!server) return;
    const logger = recordingLogger();
    const { redis, health } = client(t, server.url, logger);
    await waitReady(redis, RECOVERY_BOUND_MS);
    await eventually('the health says ready', () => health.ready);
    let reconnects = 0;
    redis.on('reconnecting', () => reconnects++);

    server.process!.kill('SIGSTOP');
    t.after(() => void server.process?.kill('SIGCONT'));
    const key = `${uniquePrefix()}k`;
    let inFlight: 'pending' | 'resolved' | 'rejected' = 'pending';
    redis.set(key, 'sent to a stopped Redis').then(
      () => (inFlight = 'resolved'),
      () => (inFlight = 'rejected'),
    );
    await eventually('the health says not ready', () => !health.ready);
    await eventually('the client is disconnected', () => reconnects > 0);
    assert.match(health.reason ?? '', /no answer|closed|reconnecting/);
    // Its reconnects reach the kernel's accept queue and then hang in the handshake; the probe
    // cuts those too, and the command sent into the silence is refused instead of hanging.
    await eventually('the SET sent into the silence is refused', () => inFlight === 'rejected');

    server.process!.kill('SIGCONT');
    await eventually('a SET succeeds again', async () => (await redis.set(key, 'v')) === 'OK');
    await eventually('the health says ready again', () => health.ready);
    assert.ok(
      logger.lines.some((l) => l.includes('no answer to PING')),
      `the probe's verdict is logged: ${logger.lines.join('\n')}`,
    );
  });

  test('a primary demoted to a replica (READONLY) makes the client reconnect', async (t) => {
    const server = await ownRedis(t);
    if (!server) return;
    const { redis } = client(t, server.url);
    await waitReady(redis, RECOVERY_BOUND_MS);
    let reconnects = 0;
    redis.on('reconnecting', () => reconnects++);
    const admin = connectRedis(server.url, { name: 'herald:test-admin' });
    t.after(() => admin.disconnect());
    await waitReady(admin, RECOVERY_BOUND_MS);
    // A replica of a primary that is not there: it refuses writes, as a demoted primary does.
    await admin.replicaof('127.0.0.1', '1');
    t.after(() => admin.replicaof('NO', 'ONE').catch(() => undefined));

    const key = `${uniquePrefix()}k`;
    await assert.rejects(redis.set(key, 'v'), /READONLY/);
    await eventually('the client reconnected', () => reconnects > 0);
    await admin.replicaof('NO', 'ONE');
    await eventually('a SET succeeds again', async () => (await redis.set(key, 'v')) === 'OK');
  });
});

describe('waitReady', () => {
  test('rejects after its timeout naming the URL without its password, and logs no password', async (t) => {
    const server = await ownRedis(t);
    if (!server) return;
    const port = server.port;
    await server.kill(); // a port that answers nothing
    const logger = recordingLogger();
    const url = `redis://herald:s3cret-pw@127.0.0.1:${port}/0`;
    const { redis } = client(t, url, logger);
    await assert.rejects(waitReady(redis, WAIT_READY_MS), (err: Error) => {
      assert.match(err.message, new RegExp(`redis://herald:\\[redacted\\]@127\\.0\\.0\\.1:${port}/0 was not ready within ${WAIT_READY_MS} ms`));
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(!err.message.includes('s3cret-pw'));
      return true;
    });
    assert.ok(logger.lines.length > 0, 'the failed connection is logged');
    for (const line of logger.lines) assert.ok(!line.includes('s3cret-pw'), `a log line has the password: ${line}`);
  });
});
