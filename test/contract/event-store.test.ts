import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
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
