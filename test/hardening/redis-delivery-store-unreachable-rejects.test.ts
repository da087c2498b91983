import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { HeraldError } from '../../src/core/errors.js';
import { RedisDeliveryStore } from '../../src/stores/redis-delivery-store.js';

/**
 * A node whose Redis is gone must say so, not hang: the planner retries, claims are logged and
 * tried again, and the API answers 503, all because every store call rejects instead of waiting
 * in the client's offline queue for a server that may never come back.
 */

/** A loopback port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

test('every call on a Redis delivery store whose server is unreachable rejects with BACKEND_UNAVAILABLE', async (t) => {
  // The client as a node would configure it: retrying for ever in the background.
  const redis = new Redis({ host: '127.0.0.1', port: await closedPort(), retryStrategy: () => 50 });
  redis.on('error', () => undefined);
  t.after(() => redis.disconnect());
  const s = new RedisDeliveryStore({ redis, prefix: '{herald-unreachable}:', logId: () => Promise.resolve('x') });
  const req = [{ endpointId: 'e', limit: 1, ordered: false }];
  const calls: [string, () => Promise<unknown>][] = [
    ['listEndpoints', () => s.listEndpoints()],
    ['endpointsVersion', () => s.endpointsVersion()],
    ['plannedThrough', () => s.plannedThrough()],
    ['enqueue', () => s.enqueue([], 1)],
    ['claim', () => s.claim(req, 0, 1_000, 'w')],
    ['finish', () => s.finish([])],
    ['release', () => s.release([], 0)],
    ['acquireLease', () => s.acquireLease('planner', 'w', 0, 1_000)],
    ['leaseHolder', () => s.leaseHolder('planner', 0)],
    ['hold', () => s.hold('e', 0)],
    ['getDelivery', () => s.getDelivery(1)],
    ['listDeliveries', () => s.listDeliveries('e', { limit: 1 })],
    ['prune', () => s.prune(0)],
  ];
  for (const [name, call] of calls) {
    await assert.rejects(call(), (err: unknown) => err instanceof HeraldError && err.code === 'BACKEND_UNAVAILABLE', name);
  }
  await s.close();
});
