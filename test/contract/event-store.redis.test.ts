import { after } from 'node:test';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { redisForSuite, suiteClients } from '../helpers/redis.js';
import { eventStoreContract } from './event-store.contract.js';

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

