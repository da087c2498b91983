import type pg from 'pg';
import { after, before, describe } from 'node:test';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { postgresForSuite, suiteDatabase } from '../helpers/postgres.js';
import { eventStoreContract } from './event-store.contract.js';

// Each store a schema of its own (a new log) in one database, made in `before`; a reopen is a new pool on the same schema.
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
