import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { after, before, describe } from 'node:test';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { postgresForSuite, suiteDatabase } from '../helpers/postgres.js';
import { redisForSuite, suiteClients } from '../helpers/redis.js';
import { eventStoreContract } from './event-store.contract.js';

eventStoreContract('memory', { create: (now) => new MemoryEventStore({ now }) });

let file = '';
eventStoreContract('sqlite', {
  create(now) {
    file = join(mkdtempSync(join(tmpdir(), 'herald-store-')), 'events.db');
    return new SqliteEventStore({ file, now });
  },
  reopen: (now) => new SqliteEventStore({ file, now }),
});

// Each store its own prefix (a new log); a reopen is a new client on the same prefix.
const url = await redisForSuite('EventStore contract: redis');
if (url) {
  const redis = suiteClients(url);
  after(() => redis.close());
  let prefix = '';
  eventStoreContract('redis', {
    create(now) {
      prefix = redis.prefix();
      return new RedisEventStore({ redis: redis.client(), prefix, now });
    },
    reopen: (now) => new RedisEventStore({ redis: redis.client(), prefix, now }),
  });
}

// Each store a schema of its own (a new log) in one database, made in `before` (the suites above
// are already running); a reopen is a new pool on the same schema.
const pgUrl = await postgresForSuite('EventStore contract: postgres');
if (pgUrl) {
  describe('on Postgres', () => {
    let db: Awaited<ReturnType<typeof suiteDatabase>> | undefined;
    let pool: pg.Pool | undefined;
    before(async () => {
      db = await suiteDatabase(pgUrl);
      pool = db.pool();
    });
    after(() => db?.drop());
    let schema = '';
    eventStoreContract('postgres', {
      async create(now) {
        schema = await db!.migrated();
        return new PostgresEventStore({ pool: pool!, schema, now });
      },
      reopen: (now) => new PostgresEventStore({ pool: db!.pool(), schema, now }),
    });
  });
}
