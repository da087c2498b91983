import { Redis } from 'ioredis';
import pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { newEpoch } from '../../src/core/position.js';
import { MemoryDeliveryStore } from '../../src/stores/memory-delivery-store.js';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { RedisDeliveryStore } from '../../src/stores/redis-delivery-store.js';
import { POSTGRES_DELIVERY_MIGRATIONS } from '../../src/stores/postgres-delivery-migrations.js';
import { migratePostgres } from '../../src/stores/postgres-migrations.js';
import { PostgresDeliveryStore } from '../../src/stores/postgres-delivery-store.js';
import { postgresSuiteSkip, testDatabases } from '../helpers/postgres-deliveries.js';
import { deletePrefix, REDIS_URL, redisSuiteSkip, uniquePrefix } from '../helpers/redis.js';
import { connect, deliveryStoreContract } from './delivery-store.contract.js';

deliveryStoreContract('memory', { create: () => new MemoryDeliveryStore() });

let file = '';
deliveryStoreContract('sqlite (in the event store database)', {
  create() {
    file = join(mkdtempSync(join(tmpdir(), 'herald-deliveries-')), 'herald.db');
    // The way Herald runs it: the delivery tables live in the event store's own file.
    return new SqliteDeliveryStore(new SqliteEventStore({ file }).database);
  },
  reopen: () => new SqliteDeliveryStore(connect(file)),
  second: () => new SqliteDeliveryStore(connect(file)),
});

// Redis: each run a fresh prefix; `reopen` and `second` are new clients on the same prefix.
const redisSkip = await redisSuiteSkip();
const clients: Redis[] = [];
let prefix = '';
let epoch = '';
const redisStore = (): RedisDeliveryStore => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  clients.push(redis);
  const logId = epoch;
  return new RedisDeliveryStore({ redis, prefix, logId: () => Promise.resolve(logId) });
};
const prefixes: string[] = [];
if (redisSkip) {
  describe('DeliveryStore contract: redis', { skip: redisSkip }, () => {});
} else {
  deliveryStoreContract('redis', {
    create() {
      prefix = uniquePrefix('herald-deliveries');
      prefixes.push(prefix);
      epoch = newEpoch();
      return redisStore();
    },
    reopen: redisStore,
    second: redisStore,
  });
  after(async () => {
    for (const p of prefixes) await deletePrefix(clients[0]!, p);
    for (const c of clients) c.disconnect();
  });
}

// Postgres: each run a fresh database, migrated; `reopen` and `second` are new pools on it.
const postgresSkip = await postgresSuiteSkip();
if (postgresSkip) {
  describe('DeliveryStore contract: postgres', { skip: postgresSkip }, () => {});
} else {
  const databases = testDatabases('herald_deliveries');
  const pools: pg.Pool[] = [];
  let database = '';
  const postgresStore = (): PostgresDeliveryStore => {
    const pool = new pg.Pool({ connectionString: database, max: 4 });
    pool.on('error', () => undefined);
    pools.push(pool);
    const logId = epoch;
    return new PostgresDeliveryStore({ pool, logId: () => Promise.resolve(logId) });
  };
  deliveryStoreContract('postgres', {
    async create() {
      database = await databases.create();
      epoch = newEpoch();
      const store = postgresStore();
      await migratePostgres(pools.at(-1)!, 'herald', [POSTGRES_DELIVERY_MIGRATIONS]);
      return store;
    },
    reopen: postgresStore,
    second: postgresStore,
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await databases.dropAll();
  });
}
