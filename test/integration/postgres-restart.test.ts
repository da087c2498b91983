import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PostgresBroker } from '../../src/brokers/postgres-broker.js';
import { createPostgresPool } from '../../src/stores/postgres-connection.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { migratePostgres } from '../../src/stores/postgres-migrations.js';
import { ownPostgres } from '../helpers/postgres.js';

/** Resolves once `condition()` holds, checking every few milliseconds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** `call()` until it resolves: a connection that died with the server fails its first use. */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

test('while Postgres is down calls reject; once it is back the log and every node go on where they were', async (t) => {
  const own = await ownPostgres(t);
  if (!own) return;
  const pool = createPostgresPool({ url: own.url });
  const nodePool = createPostgresPool({ url: own.url });
  await migratePostgres(pool);
  const store = new PostgresEventStore({ pool });
  const broker = new PostgresBroker({ pool: nodePool, store: new PostgresEventStore({ pool: nodePool }) });
  // after hooks run in order: the broker stops before the pools end.
  t.after(() => broker.close());
  t.after(() => pool.end());
  t.after(() => nodePool.end());
  const got: number[] = [];
  broker.onEvents((events) => got.push(...events.map((e) => e.seq)));
  await broker.started;
  const [first] = await store.append([{ channel: 'a', type: 'message', data: '1' }]);
  await until(() => got.length === 1);

  own.stop();
  await assert.rejects(store.append([{ channel: 'a', type: 'message', data: 'lost' }]));
  await assert.rejects(store.head());

  own.start();
  const [second] = await eventually(() => store.append([{ channel: 'a', type: 'message', data: '2' }]));
  // Nothing of the refused append was stored; the log and its identity are the same.
  assert.equal(second!.event.seq, 2);
  assert.equal(second!.event.id.split('-')[0], first!.event.id.split('-')[0]);
  await until(() => got.length === 2);
  assert.deepEqual(got, [1, 2]);
});
