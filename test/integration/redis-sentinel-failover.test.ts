import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectRedis, RedisHealth, waitReady } from '../../src/stores/redis-connection.js';
import { needRedisSentinel, restoreRedisSentinel, sentinelPrimary, uniquePrefix } from '../helpers/redis.js';

/** keys written before the primary dies. */
const KEYS = 200;
/** milliseconds the client may take to follow the sentinels to the new primary (the set calls a primary down after 1 s). */
const FAILOVER_BOUND_MS = 30_000;
/** milliseconds for start-up and for WAIT to see the replica acknowledge. */
const READY_TIMEOUT_MS = 10_000;
/** milliseconds between write attempts while the primary is down. */
const POLL_MS = 50;

test('after SIGKILL of the primary, a client of redis+sentinel:// follows the sentinels to the new primary by itself, and every write the replica acknowledged is there', async (t) => {
  const url = await needRedisSentinel(t);
  if (!url) return;
  const redis = connectRedis(url, { name: 'herald:failover-test' });
  const health = new RedisHealth(redis, { name: 'herald:failover-test' });
  const prefix = uniquePrefix('herald-failover');
  t.after(async () => {
    await redis.del(...Array.from({ length: KEYS }, (_, i) => `${prefix}${i}`), `${prefix}after`).catch(() => undefined);
    health.close();
    redis.disconnect();
    // The killed node comes back as a replica of the new primary: the next run finds the set whole.
    restoreRedisSentinel();
  });
  await waitReady(redis, READY_TIMEOUT_MS);

  const pipeline = redis.pipeline();
  for (let i = 0; i < KEYS; i++) pipeline.set(`${prefix}${i}`, String(i));
  await pipeline.exec();
  // Replication is asynchronous: an OK from the primary means the primary has the write, not
  // that any replica does. A write acknowledged by the old primary but not yet sent to the
  // replica is lost when the replica is promoted: the client saw OK, the new primary never saw
  // the write, and nothing reports it (the killed node, restarted as a replica, resyncs from
  // the new primary and drops it too). This is why WAIT exists: WAIT 1 <ms> returns once one
  // replica has acknowledged everything this connection wrote before it, so a caller can hold
  // its own acknowledgement until then. It narrows the window, it does not close it: WAIT's
  // documentation says it does not make Redis strongly consistent (a partition can still lose
  // a write), though it improves real-world safety across a Sentinel failover, which promotes
  // the replica with the most data. The keys below must survive because WAIT said the replica
  // had them.
  assert.equal(await redis.wait(1, READY_TIMEOUT_MS), 1, 'the replica acknowledged the writes');

  const old = sentinelPrimary();
  process.kill(old.pid, 'SIGKILL');

  const started = Date.now();
  let refused = 0;
  let longestRefusalMs = 0;
  for (;;) {
    const attempt = Date.now();
    try {
      if ((await redis.set(`${prefix}after`, 'written after the failover')) === 'OK') break;
    } catch {
      refused++;
      longestRefusalMs = Math.max(longestRefusalMs, Date.now() - attempt);
    }
    if (Date.now() - started > FAILOVER_BOUND_MS) assert.fail(`no write succeeded within ${FAILOVER_BOUND_MS} ms of the primary's death`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  t.diagnostic(
    `writes succeeded again ${Date.now() - started} ms after the kill; ${refused} refused meanwhile, the slowest refusal took ${longestRefusalMs} ms`,
  );

  // The client is on another node, and that node is a primary.
  const info = await redis.info('server');
  const port = Number(/tcp_port:(\d+)/.exec(info)?.[1]);
  assert.notEqual(port, old.port, 'the client still talks to the killed node');
  const [role] = (await redis.role()) as [string, ...unknown[]];
  assert.equal(role, 'master');
  assert.equal(sentinelPrimary().port, port, 'the client is on the primary the sentinels name');

  const values = await redis.mget(Array.from({ length: KEYS }, (_, i) => `${prefix}${i}`));
  assert.deepEqual(values, Array.from({ length: KEYS }, (_, i) => String(i)), 'a write the replica acknowledged was lost');
  assert.equal(await redis.get(`${prefix}after`), 'written after the failover');
  await waitForReady(health);
});

async function waitForReady(health: RedisHealth): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!health.ready) {
    if (Date.now() > deadline) assert.fail(`the health is still not ready: ${health.reason}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

test('after a failover run by the sentinels (SENTINEL FAILOVER: the old primary lives on and is demoted), the client moves to the new primary by itself', async (t) => {
  const url = await needRedisSentinel(t);
  if (!url) return;
  const redis = connectRedis(url, { name: 'herald:switchover-test' });
  const prefix = uniquePrefix('herald-switchover');
  t.after(async () => {
    await redis.del(`${prefix}k`).catch(() => undefined);
    redis.disconnect();
  });
  await waitReady(redis, READY_TIMEOUT_MS);
  const old = sentinelPrimary();
  const sentinel = connectRedis(url.replace(/^redis\+sentinel:\/\/([^,/]+).*$/, 'redis://$1'), { name: 'herald:switchover-test-sentinel' });
  t.after(() => sentinel.disconnect());
  await waitReady(sentinel, READY_TIMEOUT_MS);
  // The old primary is demoted, not killed: a connection still open to it would be answered
  // READONLY; the client reconnects on that, or sooner on the sentinels' +switch-master.
  assert.equal(await sentinel.call('SENTINEL', 'FAILOVER', 'herald'), 'OK');

  const started = Date.now();
  for (;;) {
    try {
      await redis.set(`${prefix}k`, 'v');
      const port = Number(/tcp_port:(\d+)/.exec(await redis.info('server'))?.[1]);
      if (port !== old.port) break;
    } catch {
      /* refused while it moves */
    }
    if (Date.now() - started > FAILOVER_BOUND_MS) assert.fail(`still not on a new primary ${FAILOVER_BOUND_MS} ms after the failover`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  t.diagnostic(`on the new primary ${Date.now() - started} ms after SENTINEL FAILOVER`);
  const [role] = (await redis.role()) as [string, ...unknown[]];
  assert.equal(role, 'master');
  // The next test finds every replica in sync again.
  restoreRedisSentinel();
});
