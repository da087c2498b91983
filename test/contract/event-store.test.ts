import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
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

// Redis and Postgres run the same contract in files of their own (event-store.redis.test.ts,
// event-store.postgres.test.ts): each file has its own time budget.
