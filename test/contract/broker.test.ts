import type pg from 'pg';
import { after, before, describe } from 'node:test';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { RedisBroker } from '../../src/brokers/redis-broker.js';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { PostgresBroker } from '../../src/brokers/postgres-broker.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { postgresForSuite, suiteDatabase } from '../helpers/postgres.js';
import { redisForSuite, suiteClients } from '../helpers/redis.js';
import { brokerContract, memoryDeployment } from './broker.contract.js';

// In one process every node shares the one in-process broker.
brokerContract('memory', {
  create() {
    const broker = new MemoryBroker();
    return memoryDeployment(() => broker);
  },
});

// Several nodes on one Redis log: each node a broker with its own client. The store appends
// to the stream, which is how the other nodes hear of the events.
const url = await redisForSuite('Broker contract: redis');
if (url) {
  const redis = suiteClients(url);
  after(() => redis.close());
  brokerContract('redis', {
    create() {
      const prefix = redis.prefix();
      const store = new RedisEventStore({ redis: redis.client(), prefix });
      const brokers: RedisBroker[] = [];
      return {
        store,
        // A node is up once its broker follows the log: what is appended from then on reaches it.
        async node() {
          const broker = new RedisBroker({ redis: redis.client(), prefix });
          brokers.push(broker);
          await broker.started;
          return broker;
        },
        async close() {
          for (const b of brokers) await b.close();
          await store.close();
        },
      };
    },
  });
}

// Several nodes on one Postgres log (a schema of its own per deployment): each node a pool, a
// store and a broker of its own. The store's NOTIFY wakes the other nodes, which read the log.
const pgUrl = await postgresForSuite('Broker contract: postgres');
if (pgUrl) {
  describe('on Postgres', () => {
    let db: Awaited<ReturnType<typeof suiteDatabase>> | undefined;
    let pool: pg.Pool | undefined;
    before(async () => {
      db = await suiteDatabase(pgUrl);
      pool = db.pool();
    });
    after(() => db?.drop());
    brokerContract('postgres', {
      async create() {
        const schema = await db!.migrated();
        const store = new PostgresEventStore({ pool: pool!, schema });
        const brokers: PostgresBroker[] = [];
        return {
          store,
          // A node is up once its broker follows the log: what is appended from then on reaches it.
          async node() {
            const nodePool = db!.pool();
            const broker = new PostgresBroker({ pool: nodePool, schema, store: new PostgresEventStore({ pool: nodePool, schema }) });
            brokers.push(broker);
            await broker.started;
            return broker;
          },
          async close() {
            for (const b of brokers) await b.close();
            await store.close();
          },
        };
      },
    });
  });
}
