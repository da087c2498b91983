import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { HeraldError } from '../../src/core/errors.js';
import { PostgresDeliveryStore } from '../../src/stores/postgres-delivery-store.js';

/**
 * A node whose Postgres is gone must say so, not hang: the planner retries, claims are logged and
 * tried again, and the API answers 503, all because every store call rejects, whether the server
 * refuses connections or accepts them and never answers.
 */

/** A loopback port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

const unavailable = (err: unknown) => err instanceof HeraldError && err.code === 'BACKEND_UNAVAILABLE';

test('every call on a Postgres delivery store whose server refuses connections rejects with BACKEND_UNAVAILABLE', async (t) => {
  const pool = new pg.Pool({ host: '127.0.0.1', port: await closedPort(), user: 'herald', database: 'herald' });
  pool.on('error', () => undefined);
  t.after(() => pool.end());
  const s = new PostgresDeliveryStore({ pool, logId: () => Promise.resolve('x') });
  const req = [{ endpointId: 'e', limit: 1, ordered: false }];
  const calls: [string, () => Promise<unknown>][] = [
    ['putEndpoint', () => s.putEndpoint({ id: 'e' } as never)],
    ['deleteEndpoint', () => s.deleteEndpoint('e')],
    ['listEndpoints', () => s.listEndpoints()],
    ['endpointsVersion', () => s.endpointsVersion()],
    ['plannedThrough', () => s.plannedThrough()],
    ['enqueue', () => s.enqueue([], 1)],
    ['claim', () => s.claim(req, 0, 1_000, 'w')],
    ['finish', () => s.finish([])],
    ['release', () => s.release([], 0)],
    ['leaseOwners', () => s.leaseOwners()],
    ['releaseOwners', () => s.releaseOwners(['w'], 0)],
    ['acquireLease', () => s.acquireLease('planner', 'w', 0, 1_000)],
    ['releaseLease', () => s.releaseLease('planner', 'w')],
    ['leaseHolder', () => s.leaseHolder('planner', 0)],
    ['hold', () => s.hold('e', 0)],
    ['unhold', () => s.unhold('e', 0)],
    ['retry', () => s.retry(1, 0)],
    ['getDelivery', () => s.getDelivery(1)],
    ['listDeliveries', () => s.listDeliveries('e', { limit: 1 })],
    ['prune', () => s.prune(0)],
  ];
  for (const [name, call] of calls) await assert.rejects(call(), unavailable, name);
  await s.close();
});

test('a call on a Postgres delivery store whose server accepts connections but never answers rejects with BACKEND_UNAVAILABLE', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((ready) => silent.listen(0, '127.0.0.1', ready));
  const { port } = silent.address() as { port: number };
  // The pool as a caller might make it: no connection timeout of its own.
  const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'herald', database: 'herald' });
  pool.on('error', () => undefined);
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((closed) => silent.close(closed));
    await pool.end();
  });
  const s = new PostgresDeliveryStore({ pool, logId: () => Promise.resolve('x') });
  await Promise.all([
    assert.rejects(s.claim([{ endpointId: 'e', limit: 1, ordered: false }], 0, 1_000, 'w'), unavailable, 'claim'),
    assert.rejects(s.acquireLease('planner', 'w', 0, 1_000), unavailable, 'acquireLease'),
  ]);
  await s.close();
});
