import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { after, before, describe, test } from 'node:test';
import type { EventInput } from '../../src/core/event.js';
import type { EventStore } from '../../src/core/event-store.js';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { postgresForSuite, premigratedSchemas, suiteDatabase } from '../helpers/postgres.js';
import { redisForSuite, suiteClients } from '../helpers/redis.js';

/** The "stream positions" part of the EventStore specification, against every store. */

const rec = (stream: string, offset: number, data: unknown = offset): EventInput => ({
  channel: 'kafka.in',
  type: 'message',
  data: JSON.stringify(data),
  origin: { stream, offset },
});

interface Factory {
  create(): EventStore;
  reopen?(): EventStore;
}

function streamPositionsContract(name: string, f: Factory): void {
  describe(`EventStore stream positions: ${name}`, () => {
    test('stores each offset of a stream once: a replay in a later batch stores nothing', async () => {
      const s = f.create();
      const first = await s.append([rec('kafka/t/0', 0), rec('kafka/t/0', 1), rec('kafka/t/0', 2)]);
      assert.deepEqual(first.map((r) => r.duplicate), [false, false, false]);
      // A consumer that restarts from an older committed offset sends 1..4 again.
      const again = await s.append([rec('kafka/t/0', 1), rec('kafka/t/0', 2), rec('kafka/t/0', 3), rec('kafka/t/0', 4)]);
      assert.deepEqual(again.map((r) => r.duplicate), [true, true, false, false]);
      // A replay resolves to the newest event stored from the stream, never to a new one.
      assert.equal(again[0]!.event.seq, first[2]!.event.seq);
      const all = await s.read(['kafka.in'], 0, 100);
      assert.deepEqual(all.map((e) => JSON.parse(e.data) as number), [0, 1, 2, 3, 4]);
      await s.close();
    });

    test('a repeated or older offset later in the same batch is a duplicate', async () => {
      const s = f.create();
      const r = await s.append([rec('kafka/t/0', 7), rec('kafka/t/0', 7), rec('kafka/t/0', 3), rec('kafka/t/0', 8)]);
      assert.deepEqual(r.map((x) => x.duplicate), [false, true, true, false]);
      assert.equal((await s.read(['kafka.in'], 0, 100)).length, 2);
      await s.close();
    });

    test('keeps one position per stream: partitions and topics do not shadow each other', async () => {
      const s = f.create();
      await s.append([rec('kafka/t/0', 10), rec('kafka/t/1', 0), rec('kafka/u/0', 5)]);
      const r = await s.append([rec('kafka/t/1', 1), rec('kafka/u/0', 5), rec('kafka/t/0', 11), rec('kafka/t/2', 0)]);
      assert.deepEqual(r.map((x) => x.duplicate), [false, true, false, false]);
      await s.close();
    });

    test('inputs without an origin are never affected by positions', async () => {
      const s = f.create();
      await s.append([rec('kafka/t/0', 3)]);
      const r = await s.append([{ channel: 'kafka.in', type: 'message', data: '"http"' }, rec('kafka/t/0', 4)]);
      assert.deepEqual(r.map((x) => x.duplicate), [false, false]);
      await s.close();
    });

    test('a replay is still skipped after retention deleted its event', async () => {
      const s = f.create();
      await s.append([rec('kafka/t/0', 0), rec('kafka/t/0', 1)]);
      await s.append([{ channel: 'other', type: 'message', data: '1' }]);
      await s.prune({ maxAgeMs: 0, maxEvents: 1, idempotencyTtlMs: 0 }, Date.now());
      const r = await s.append([rec('kafka/t/0', 1), rec('kafka/t/0', 2)]);
      assert.deepEqual(r.map((x) => x.duplicate), [true, false]);
      await s.close();
    });

    if (f.reopen) {
      const reopen = f.reopen;
      test('positions are durable with their events: a reopened log still skips replays', async () => {
        const s = f.create();
        await s.append([rec('kafka/t/0', 0), rec('kafka/t/0', 1)]);
        await s.close();
        const again = reopen();
        const r = await again.append([rec('kafka/t/0', 0), rec('kafka/t/0', 1), rec('kafka/t/0', 2)]);
        assert.deepEqual(r.map((x) => x.duplicate), [true, true, false]);
        await again.close();
      });

      test('a failed batch records no position: its records are stored when it is retried', async () => {
        const s = f.create();
        // NOT NULL on data makes the second insert fail; the transaction rolls back whole.
        const bad = { ...rec('kafka/t/0', 1), data: null as unknown as string };
        await assert.rejects(s.append([rec('kafka/t/0', 0), bad]));
        const r = await s.append([rec('kafka/t/0', 0), rec('kafka/t/0', 1)]);
        assert.deepEqual(r.map((x) => x.duplicate), [false, false]);
        await s.close();
      });
    }
  });
}

streamPositionsContract('memory', { create: () => new MemoryEventStore() });

let file = '';
streamPositionsContract('sqlite', {
  create() {
    file = join(mkdtempSync(join(tmpdir(), 'herald-positions-')), 'events.db');
    return new SqliteEventStore({ file });
  },
  reopen: () => new SqliteEventStore({ file }),
});

const url = await redisForSuite('EventStore stream positions: redis');
if (url) {
  const redis = suiteClients(url);
  after(() => redis.close());
  let prefix = '';
  streamPositionsContract('redis', {
    create() {
      prefix = redis.prefix();
      return new RedisEventStore({ redis: redis.client(), prefix });
    },
    reopen: () => new RedisEventStore({ redis: redis.client(), prefix }),
  });
}

// Each store a schema of its own in one database (made in `before`: the suites above are already
// running); a reopen is a new pool on the same schema.
const pgUrl = await postgresForSuite('EventStore stream positions: postgres');
if (pgUrl) {
  describe('on Postgres', () => {
    let db: Awaited<ReturnType<typeof suiteDatabase>> | undefined;
    let schemas: { next(): string } | undefined;
    let pool: pg.Pool | undefined;
    before(async () => {
      db = await suiteDatabase(pgUrl);
      schemas = await premigratedSchemas(db, 10);
      pool = db.pool();
    });
    after(() => db?.drop());
    let schema = '';
    streamPositionsContract('postgres', {
      create() {
        schema = schemas!.next();
        return new PostgresEventStore({ pool: pool!, schema });
      },
      reopen: () => new PostgresEventStore({ pool: db!.pool(), schema }),
    });
  });
}
